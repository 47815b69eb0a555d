"""Shared plumbing: data dirs, archives, configs, stage bookkeeping, logging, audio and job running."""
