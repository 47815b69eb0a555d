"""Data augmentation as Kaldi's egs/voxceleb/v2 recipe does it: reverberation (RIRS_NOISES or simulated rooms) and
additive noise, music and babble (MUSAN, or coloured noise and babble from the training speakers); and, beyond
Kaldi's, codecs: telephone and low-bitrate channels through sox.

Offline, `python -m pipeline augment-data-dir` (steps/augment_data_dir.sh) writes an augmented copy of a training
data dir; on the fly, `Augmenter(opts, ...)(wave, seed=...)` applies the same augmentations to one waveform.
"""
from pipeline.augment.augmenter import (AUGMENT_TYPES, AugmentConfigError, Augmenter, AugmentOptions,
                                        babble_pool_from)
from pipeline.augment.codec import CODECS, Codec, CodecError, band_limit, codec_problem, codec_round_trip
from pipeline.augment.noise import babble_noise, background_track, coloured_noise, foreground_track, mix_at_snr
from pipeline.augment.rir import reverberate, room_impulse_response
from pipeline.augment.seeding import rng_for, stable_hash
from pipeline.augment.sources import SourceError, find_musan, find_rirs, read_file, read_segment

__all__ = ["AUGMENT_TYPES", "CODECS", "AugmentConfigError", "AugmentOptions", "Augmenter", "Codec", "CodecError",
           "SourceError", "babble_noise", "babble_pool_from", "background_track", "band_limit", "codec_problem",
           "codec_round_trip", "coloured_noise", "find_musan", "find_rirs",
           "foreground_track", "mix_at_snr", "read_file", "read_segment", "reverberate", "rng_for",
           "room_impulse_response", "stable_hash"]
