"""Thin command-line entry points, one per stage or tool; the logic lives in the rest of the package."""
