"""The augmentations of Kaldi's egs/voxceleb/v2 recipe, applied to one waveform: one implementation for the
offline copy of a training set (`augment-data-dir`) and for on-the-fly use in a data loader.

Types (one per augmented copy, drawn with the configured weights):
  reverb  convolution with a room impulse response: RIRS_NOISES small/medium simulated rooms when given, else a
          room simulated here (pyroomacoustics); the output keeps the input's power (`wav-reverberate
          --normalize-output`) and its direct path stays aligned with the dry speech
  noise   MUSAN noise clips one after another with 1 s gaps (Kaldi `--fg-interval 1`), SNR 0-15 dB; without
          MUSAN, coloured noise (1/f^a, a in [0, 2]) at the same SNRs
  music   one MUSAN music recording (no vocals) from a random offset, SNR 5-15 dB; needs MUSAN
  babble  3-7 talkers summed at equal level, SNR 13-20 dB: MUSAN speech, else other speakers of the training set
  codec   not Kaldi's: a low-pass at a cutoff drawn from `codec_lowpass_hz` (none with probability
          `codec_full_band`), then a round trip through one of `codecs` (telephone G.711, GSM, AMR-NB, Ogg Vorbis;
          pipeline/augment/codec.py), the channels real recordings come through
Kaldi draws each background talker at its own SNR from 13-20 dB; here their sum is set to one SNR of that range, so
that the SNR a copy records is the SNR it has. SNRs are drawn uniformly in their range (Kaldi: from a list of
values in it).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from pipeline.augment.codec import CODECS, band_limit, codec_problem, codec_round_trip
from pipeline.augment.noise import babble_noise, coloured_noise, foreground_track, mix_at_snr
from pipeline.augment.rir import reverberate, room_impulse_response
from pipeline.augment.seeding import rng_for
from pipeline.augment.sources import find_musan, find_rirs, read_file, read_segment
from pipeline.errors import PipelineError
from pipeline.utils.audio import read_wav_scp_entry

KALDI_TYPES = ("reverb", "noise", "music", "babble")
AUGMENT_TYPES = KALDI_TYPES + ("codec",)
AUGMENT_MODES = ("offline", "online")


class AugmentConfigError(PipelineError, ValueError):
    """An `augment:` section that cannot be used; the message names the key."""


def _pair(value: Any, key: str) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError) as err:
        raise AugmentConfigError(f"augment.{key} must be a [low, high] pair, got {value!r}") from err
    if lo > hi:
        raise AugmentConfigError(f"augment.{key}: low {lo} is above high {hi}")
    return lo, hi


def _codec_options(section: Mapping[str, Any], base: "AugmentOptions", weight: float) -> dict[str, Any]:
    codecs = base.codecs if section.get("codecs") is None else section["codecs"]
    if not isinstance(codecs, (list, tuple)) or not all(isinstance(c, str) for c in codecs):
        raise AugmentConfigError(f"augment.codecs must be a list of codec names from {list(CODECS)}, got {codecs!r}")
    unknown = [c for c in codecs if c not in CODECS]
    if unknown:
        raise AugmentConfigError(f"augment.codecs: unknown codec(s) {unknown}; known: {list(CODECS)} (MP3 is not "
                                 f"offered: sox encodes it only through libmp3lame, which the recipe does not need)")
    if weight > 0 and not codecs:
        raise AugmentConfigError(f"augment.codecs is empty but augment.types.codec is {weight:g}")
    lowpass = _pair(section.get("codec_lowpass_hz", base.codec_lowpass_hz), "codec_lowpass_hz")
    if lowpass[0] <= 0:
        raise AugmentConfigError(f"augment.codec_lowpass_hz: cutoffs must be above 0 Hz, got {list(lowpass)}")
    try:
        full_band = float(section.get("codec_full_band", base.codec_full_band))
    except (TypeError, ValueError) as err:
        raise AugmentConfigError(f"augment.codec_full_band must be a probability, got "
                                 f"{section.get('codec_full_band')!r}") from err
    if not 0.0 <= full_band <= 1.0:
        raise AugmentConfigError(f"augment.codec_full_band must be a probability in [0, 1], got {full_band}")
    return {"codecs": tuple(codecs), "codec_lowpass_hz": lowpass, "codec_full_band": full_band}


@dataclass(frozen=True)
class AugmentOptions:
    """The `augment:` section of a config (defaults: Kaldi's voxceleb v2 recipe)."""

    enabled: bool = False
    copies: int = 1                       # augmented copies of each utterance, each of a different type
    types: Mapping[str, float] = field(default_factory=lambda: {t: 1.0 for t in KALDI_TYPES})
    snr_db: Mapping[str, tuple[float, float]] = field(
        default_factory=lambda: {"noise": (0.0, 15.0), "music": (5.0, 15.0), "babble": (13.0, 20.0)})
    babble_speakers: tuple[int, int] = (3, 7)
    noise_interval_s: float = 1.0         # gap between MUSAN noise clips
    rt60_s: tuple[float, float] = (0.15, 0.8)   # simulated rooms only
    rirs_noises: str | None = None        # RIRS_NOISES directory (openslr 28); None: simulated rooms
    musan: str | None = None              # musan directory (openslr 17); None: coloured noise, training babble
    musan_vocals: bool = False            # Kaldi leaves out music with vocals
    babble_pool: int = 1000               # training utterances the babble draws from, without MUSAN
    codecs: tuple[str, ...] = tuple(CODECS)     # drawn per codec copy; those this sox lacks are left out
    codec_lowpass_hz: tuple[float, float] = (3400.0, 7600.0)   # low-pass cutoff of a codec copy, drawn uniformly
    codec_full_band: float = 0.25         # probability that a codec copy has no low-pass
    audio_format: str = "wav"             # wav, or flac (lossless, ~1.6x smaller on noisy speech)
    seed: int = 0
    # offline: stage 0 writes the augmented copy (data.train = train + copy); online: the training loader augments
    # each crop of the clean set (pipeline/dataset/online.py), and no copy is written
    mode: str = "offline"
    probability: float | None = None     # online: share of crops augmented; None: copies / (copies + 1), the
                                          # share of augmented utterances in the offline union
    room_pool: int = 500                  # online, simulated rooms: drawn from this many rooms, each simulated
                                          # once per loader worker (a room takes ~20 ms; RIRS_NOISES is a pool too)

    @classmethod
    def from_config(cls, section: Mapping[str, Any] | None, default_seed: int = 0) -> "AugmentOptions":
        """Parse and check a config section; absent keys take the defaults above (seed: `default_seed`)."""
        section = dict(section or {})
        known = set(cls.__dataclass_fields__)
        unknown = set(section) - known
        if unknown:
            raise AugmentConfigError(f"unknown augment option(s) {sorted(unknown)}; known: {sorted(known)}")
        base = cls()
        types = dict(section.pop("types", None) or base.types)
        bad = set(types) - set(AUGMENT_TYPES)
        if bad or any(float(w) < 0 for w in types.values()):
            raise AugmentConfigError(f"augment.types: types are {list(AUGMENT_TYPES)} with weights >= 0, "
                                     f"got {types}")
        snr = dict(base.snr_db)
        for kind, value in (section.pop("snr_db", None) or {}).items():
            if kind not in snr:
                raise AugmentConfigError(f"augment.snr_db: no SNR for {kind!r}; keys are {sorted(snr)}")
            snr[kind] = _pair(value, f"snr_db.{kind}")
        opts = cls(**{**section, "types": {k: float(w) for k, w in types.items()}, "snr_db": snr,
                      "babble_speakers": tuple(int(v) for v in _pair(section.get("babble_speakers",
                                                                               base.babble_speakers),
                                                                   "babble_speakers")),
                      "rt60_s": _pair(section.get("rt60_s", base.rt60_s), "rt60_s"),
                      **_codec_options(section, base, float(types.get("codec", 0))),
                      "seed": int(section.get("seed", default_seed))})
        if opts.copies < 1:
            raise AugmentConfigError(f"augment.copies must be >= 1, got {opts.copies}")
        if opts.mode not in AUGMENT_MODES:
            raise AugmentConfigError(f"augment.mode must be one of {list(AUGMENT_MODES)}, got {opts.mode!r}")
        if opts.probability is not None and not 0.0 <= float(opts.probability) <= 1.0:
            raise AugmentConfigError(f"augment.probability must be in [0, 1] (or null), got {opts.probability!r}")
        if opts.room_pool < 0:
            raise AugmentConfigError(f"augment.room_pool must be >= 0 (0: a new room per draw), got {opts.room_pool}")
        if opts.audio_format not in ("wav", "flac"):
            raise AugmentConfigError(f"augment.audio_format must be wav or flac, got {opts.audio_format!r}")
        return opts

    @property
    def online(self) -> bool:
        """Whether the training loader augments (`mode: online`) rather than stage 0 (enabled, `mode: offline`)."""
        return self.enabled and self.mode == "online"

    @property
    def offline(self) -> bool:
        return self.enabled and self.mode == "offline"

    def crop_probability(self) -> float:
        """The share of training crops augmented online."""
        return float(self.probability) if self.probability is not None else self.copies / (self.copies + 1)

    def fingerprint_fields(self) -> dict[str, Any]:
        """What the augmented audio depends on (not `enabled`, which only says whether to make it, nor the online
        keys, which the offline copy does not read; nor the codec options when no copy is a codec copy, so that a
        set augmented before codecs existed stays current)."""
        fields = asdict(self)
        for name in ("enabled", "mode", "probability", "room_pool"):
            fields.pop(name)
        if not self.types.get("codec", 0) > 0:
            for name in ("codecs", "codec_lowpass_hz", "codec_full_band"):
                fields.pop(name)
        return fields


class Augmenter:
    """Applies one of the configured augmentations to a waveform.

    `babble_pool` holds (utterance, speaker, wav.scp entry) of training utterances (`babble_pool_from`), for
    babble when there is no MUSAN. Every draw comes from the generator passed in, so the result is a function of
    the waveform and that generator. Waveforms may be at any scale (16-bit integer scale as `read_wav_scp_entry`
    gives them, or [-1, 1]): reverberation keeps the input's power and noise is set relative to it.

    On the fly, in a training dataset that reads waveforms (built once per loader worker):
        augmenter = Augmenter(AugmentOptions.from_config(cfg["augment"]), sample_rate=16000,
                              babble_pool=babble_pool_from(utt2spk, wav_scp, 1000, seed))
        crop = augmenter(crop, seed=[seed, epoch, position], speaker=utt2spk[utt])   # before MFCC and VAD
    Deriving the seed from the sample's place in the epoch, as the crop does, keeps runs reproducible whatever the
    number of workers or GPUs.
    """

    def __init__(self, opts: AugmentOptions, *, sample_rate: int = 16000,
                 babble_pool: Sequence[tuple[str, str, str]] = (), room_pool: int = 0):
        self.opts = opts
        self.sample_rate = sample_rate
        self.babble_pool = list(babble_pool)
        # room_pool > 0 (on the fly): simulated room i of the pool is a function of (seed, i), simulated on first use
        self.room_pool = room_pool
        self._rooms: dict[int, tuple[np.ndarray, float]] = {}
        self.rirs = find_rirs(opts.rirs_noises) if opts.rirs_noises else None
        self.musan = find_musan(opts.musan, use_vocals=opts.musan_vocals) if opts.musan else None
        weights = {k: w for k, w in opts.types.items() if w > 0}
        self.unavailable: dict[str, str] = {}  # type -> why it is left out (logged by the caller)
        if self.musan is None and "music" in weights:
            self.unavailable["music"] = "needs MUSAN (augment.musan)"
        if self.musan is None and "babble" in weights and len({s for _, s, _ in self.babble_pool}) < 2:
            self.unavailable["babble"] = "needs MUSAN or training utterances of at least 2 speakers"
        self.codecs: list[str] = []  # the codecs this sox encodes and decodes, of those configured
        if "codec" in weights:
            for name in opts.codecs:
                problem = codec_problem(name, sample_rate)
                if problem:
                    self.unavailable[f"codec {name}"] = problem
                else:
                    self.codecs.append(name)
            if not self.codecs:
                self.unavailable["codec"] = f"this sox can make none of augment.codecs {list(opts.codecs)}"
        weights = {k: w for k, w in weights.items() if k not in self.unavailable}
        if len(weights) < opts.copies:
            raise AugmentConfigError(f"augment.copies={opts.copies} but only {len(weights)} type(s) can be made "
                                     f"({', '.join(weights) or 'none'}; {self.unavailable or 'check augment.types'})")
        self.kinds = [k for k in AUGMENT_TYPES if k in weights]
        total = sum(weights.values())
        self.probabilities = np.array([weights[k] / total for k in self.kinds])

    # -- choosing ------------------------------------------------------------------------------------------
    def choose(self, rng: np.random.Generator, copies: int | None = None) -> list[str]:
        """The types of an utterance's copies: distinct, drawn with the configured weights."""
        picks = rng.choice(len(self.kinds), size=copies or self.opts.copies, replace=False, p=self.probabilities)
        return [self.kinds[i] for i in picks]

    def __call__(self, speech: np.ndarray, seed: int | Sequence[int], speaker: str | None = None) -> np.ndarray:
        """On the fly: one augmentation of a type drawn from `seed`, e.g. `[cfg_seed, epoch, position]`."""
        rng = np.random.default_rng(seed)
        return self.apply(self.choose(rng, 1)[0], speech, rng, speaker)[0]

    def augment_utterance(self, utt: str, speech: np.ndarray, speaker: str | None = None
                          ) -> list[tuple[str, np.ndarray, dict[str, Any]]]:
        """Offline: the copies of one utterance as (type, audio, condition); a function of (seed, utt, audio)."""
        kinds = self.choose(rng_for(self.opts.seed, utt, "types"))
        return [(kind, *self.apply(kind, speech, rng_for(self.opts.seed, utt, kind), speaker)) for kind in kinds]

    # -- applying ------------------------------------------------------------------------------------------
    def apply(self, kind: str, speech: np.ndarray, rng: np.random.Generator, speaker: str | None = None
              ) -> tuple[np.ndarray, dict[str, Any]]:
        """`speech` (any scale) with augmentation `kind`, and what was done (type, SNR or room, sources)."""
        if kind == "reverb":
            return self._reverb(speech, rng)
        if kind == "codec":
            return self._codec(speech, rng)
        n = len(speech)
        if kind == "noise":
            noise, cond = self._noise(n, rng)
        elif kind == "music":
            if self.musan is None:
                raise AugmentConfigError("music augmentation needs MUSAN: set augment.musan")
            path = self.musan["music"][int(rng.integers(len(self.musan["music"])))]
            noise, cond = read_segment(path, n, rng, self.sample_rate), {"sources": path.name}
        elif kind == "babble":
            noise, cond = self._babble(n, rng, speaker)
        else:
            raise ValueError(f"unknown augmentation {kind!r}; known: {AUGMENT_TYPES}")
        snr = float(rng.uniform(*self.opts.snr_db[kind]))
        return mix_at_snr(speech, noise, snr), {"type": kind, "snr_db": snr, **cond}

    def _reverb(self, speech: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, Any]]:
        if self.rirs is not None:
            room_set = sorted(self.rirs)[int(rng.integers(len(self.rirs)))]
            path = self.rirs[room_set][int(rng.integers(len(self.rirs[room_set])))]
            rir, cond = read_file(path, self.sample_rate), {"rir": f"{room_set}/{path.parent.name}/{path.name}"}
        elif self.room_pool:
            room = int(rng.integers(self.room_pool))
            rir, rt60 = self.pooled_room(room)
            cond = {"rt60_s": rt60, "rir": f"pool/{room}"}
        else:
            rir, rt60 = room_impulse_response(rng, self.opts.rt60_s, self.sample_rate)
            cond = {"rt60_s": rt60}
        wet = reverberate(speech, rir)
        # Same power as the dry input, as wav-reverberate's --normalize-output: the copy differs in room only.
        wet *= np.sqrt(np.mean(speech ** 2) / (np.mean(wet ** 2) + 1e-20))
        return wet, {"type": "reverb", **cond}

    def pooled_room(self, index: int) -> tuple[np.ndarray, float]:
        """Room `index` of the pool (`room_pool`): its impulse response and RT60, a function of (seed, index),
        simulated on first use and kept."""
        if index not in self._rooms:
            self._rooms[index] = room_impulse_response(rng_for(self.opts.seed, "room", index), self.opts.rt60_s,
                                                       self.sample_rate)
        return self._rooms[index]

    def _codec(self, speech: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, Any]]:
        if not self.codecs:
            raise AugmentConfigError(f"codec augmentation: {self.unavailable.get('codec', 'no codec configured')}")
        codec = CODECS[self.codecs[int(rng.integers(len(self.codecs)))]]
        setting = codec.settings[int(rng.integers(len(codec.settings)))]
        cutoff = float(rng.uniform(*self.opts.codec_lowpass_hz))
        full_band = bool(rng.random() < self.opts.codec_full_band)
        # The band the copy has: an 8 kHz codec's resampling limits it to 4 kHz whatever the low-pass.
        band = min(self.sample_rate, codec.rate or self.sample_rate) / 2
        if not full_band and cutoff < band:
            speech, band = band_limit(speech, cutoff, self.sample_rate), cutoff
        name = codec.name if setting is None else f"{codec.name}:{setting}"
        return (codec_round_trip(speech, self.sample_rate, codec, setting),
                {"type": "codec", "codec": name, "band_hz": band})

    def _noise(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, Any]]:
        if self.musan is None:
            exponent = float(rng.uniform(0.0, 2.0))
            return coloured_noise(n, exponent, rng), {"sources": f"coloured{exponent:.2f}"}
        files, clips, covered = self.musan["noise"], [], 0
        interval = int(self.opts.noise_interval_s * self.sample_rate)
        while covered < n:
            path = files[int(rng.integers(len(files)))]
            clips.append((path, read_file(path, self.sample_rate, max_samples=n - covered)))
            covered += len(clips[-1][1]) + interval
        return (foreground_track([c for _, c in clips], n, interval),
                {"sources": ",".join(p.name for p, _ in clips)})

    def _babble(self, n: int, rng: np.random.Generator, speaker: str | None) -> tuple[np.ndarray, dict[str, Any]]:
        count = int(rng.integers(self.opts.babble_speakers[0], self.opts.babble_speakers[1] + 1))
        if self.musan is not None:
            files = self.musan["speech"]
            picks = rng.choice(len(files), size=count, replace=len(files) < count)
            talkers = [read_segment(files[i], n, rng, self.sample_rate) for i in picks]
            names = [files[i].name for i in picks]
        else:  # other speakers of the training set: never the speaker of the utterance itself
            others = [(utt, entry) for utt, spk, entry in self.babble_pool if spk != speaker]
            if not others:
                raise AugmentConfigError("babble needs MUSAN (augment.musan) or a babble pool of other speakers")
            picks = rng.choice(len(others), size=count, replace=len(others) < count)
            talkers = [read_wav_scp_entry(others[i][1], self.sample_rate, resample=True)[0] for i in picks]
            names = [others[i][0] for i in picks]
        return babble_noise(talkers, n, rng), {"sources": ",".join(names)}


def babble_pool_from(utt2spk: Mapping[str, str], wav_scp: Mapping[str, str], size: int,
                     seed: int) -> list[tuple[str, str, str]]:
    """Up to `size` (utterance, speaker, wav.scp entry) of a training set, a fixed random choice for a seed."""
    utts = sorted(utt2spk, key=str.encode)
    if len(utts) > size:
        keep = rng_for(seed, "babble-pool").choice(len(utts), size=size, replace=False)
        utts = [utts[i] for i in sorted(keep)]
    return [(u, utt2spk[u], wav_scp[u]) for u in utts]
