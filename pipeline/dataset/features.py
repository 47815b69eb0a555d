"""A model's input for one utterance, read from the data dir(s) its YAML names.

A model entry of the config says what it reads with `input: <name>` (or `inputs: [<name>, ...]` for dGMM-ResNext):
  - `mfcc`:      `<set>/feats.scp` + `vad.scp` through `normalize_frames` (voiced frames, mean removed), the
                 input of the trainable GMM layer, of the GMM-UBM and of the plain-MFCC baselines;
  - `fbank`:     `<set>_fbank/feats.scp` + `vad.scp` (stage 1 with `features.fbank`), the same way: the log mel
                 filterbank WeSpeaker's ResNet34 reads;
  - any other:   `<set>_<name>/feats.scp` used as it is, e.g. `lgp_gi` is stage 3's normalised LGP map under the
                 gender-independent GMM (`data/train_lgp_gi`).
Training, extraction and `verify` all read inputs through `FeatureSource`, so the frames a model sees are the same
everywhere. Arrays are frames x dim (Kaldi's layout); models take dim x frames.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from pipeline.features.lgp import LGPExtractor
from pipeline.features.mfcc import FeatureError, MfccOptions, features_and_vad, normalize_frames, remove_mean
from pipeline.utils.archive import ArchiveError, load, matrix_shape, read_rows, read_scp
from pipeline.utils.datadir import DataDirError, read_table
from pipeline.utils.set_names import FBANK_INPUT, LGP_PREFIX, MFCC_INPUT, derived_data_dir

RAW_INPUTS = (MFCC_INPUT, FBANK_INPUT)  # stage 1's features of every frame: voiced ones kept, mean removed here
CMVN_TABLE = "utt_cmvn.scp"   # stage 1's per-utterance statistics of the voiced frames


def input_names(model_spec: Mapping[str, Any]) -> list[str]:
    """The input names of a model entry: `inputs: [...]`, or `[input]`; `mfcc` when neither is given."""
    if "inputs" in model_spec and "input" in model_spec:
        raise ValueError("a model entry takes `input: <name>` or `inputs: [<name>, ...]`, not both")
    names = model_spec.get("inputs", [model_spec.get("input", MFCC_INPUT)])
    if isinstance(names, str) or not names:
        raise ValueError(f"`inputs` must be a non-empty list of input names, got {names!r}")
    return [str(n) for n in names]


def input_data_dir(set_dir: str | os.PathLike, name: str) -> Path:
    """The data dir holding input `name` of the set in `set_dir`: the set itself for MFCC, `<set>_<name>` else
    (`<set>_fbank`, `<set>_lgp_gi`)."""
    return Path(set_dir) if name == MFCC_INPUT else derived_data_dir(set_dir, name)


class FeatureSource:
    """Reads a model's inputs (one array per input name, frames x dim, float32) for the utterances of one set:
    whole utterances (`read`, for extraction) or the rows of one crop (`num_frames` + `read_crop`, for training),
    the same frames either way."""

    def __init__(self, set_dir: str | os.PathLike, names: list[str], *, voiced_only: bool = True):
        self.set_dir = Path(set_dir)
        self.names = list(names)
        self.voiced_only = voiced_only
        self._tables: list[tuple[dict[str, str], dict[str, str] | None, dict[str, str] | None]] = []
        self._frames: dict[str, int] = {}
        # The kept rows of the last utterance asked for, per input: a training sample asks twice (its length, its crop)
        self._kept: tuple[str | None, dict[str, np.ndarray]] = (None, {})
        for name in self.names:
            directory = input_data_dir(self.set_dir, name)
            feats = self._read_required(directory, "feats.scp", name)
            vads = cmvn = None
            if name in RAW_INPUTS:
                vads = self._read_required(directory, "vad.scp", name)
                cmvn = read_scp(directory / CMVN_TABLE) if (directory / CMVN_TABLE).is_file() else None
            elif (directory / "utt2num_frames").is_file() and not self._frames:
                # stage 3's frame counts: a crop's start without touching the archive (read_rows checks the range)
                self._frames = {u: int(n) for u, n in read_table(directory / "utt2num_frames").items()}
            self._tables.append((feats, vads, cmvn))
        first = self._tables[0][0]
        for name, (feats, _, _) in zip(self.names[1:], self._tables[1:]):
            if feats.keys() != first.keys():
                missing = sorted(set(first) ^ set(feats), key=str.encode)[0]
                raise DataDirError(f"{input_data_dir(self.set_dir, name)}/feats.scp and "
                                   f"{input_data_dir(self.set_dir, self.names[0])}/feats.scp differ in their "
                                   f"utterances (e.g. {missing!r}): rerun stage 3 for both")
        self.utts: list[str] = sorted(first, key=str.encode)

    @staticmethod
    def _read_required(directory: Path, table: str, name: str) -> dict[str, str]:
        path = directory / table
        if not path.is_file():
            stage = ("1 (MFCC + VAD; features.fbank: true for fbank)" if name in RAW_INPUTS
                     else "3 (LGP)" if name.startswith(LGP_PREFIX) else "1-3")
            raise DataDirError(f"{path} not found: input {name!r} needs it (run stage {stage} for {directory.name})")
        return read_scp(path)

    def _spec(self, table: dict[str, str], name: str, utt: str, what: str = "feats.scp") -> str:
        if utt not in table:
            raise ArchiveError(f"{input_data_dir(self.set_dir, name)}/{what}: no entry for {utt!r}")
        return table[utt]

    def read(self, utt: str) -> list[np.ndarray]:
        """The inputs of `utt`, one (frames x dim) float32 array per input name, all with the same frame count."""
        arrays = []
        for name, (feats, vads, cmvn) in zip(self.names, self._tables):
            matrix = load(self._spec(feats, name, utt))
            if vads is not None:
                vad = load(self._spec(vads, name, utt, "vad.scp")) if self.voiced_only else None
                matrix = normalize_frames(matrix, vad, voiced_only=self.voiced_only,
                                          stats=self._stats(name, cmvn, utt))
            arrays.append(np.ascontiguousarray(matrix, dtype=np.float32))
        if len({len(a) for a in arrays}) > 1:
            raise ArchiveError(f"{utt}: inputs {self.names} have different frame counts "
                               f"{[len(a) for a in arrays]}; were they made with the same VAD setting?")
        return arrays

    def _kept_rows(self, name: str, vads: dict[str, str], utt: str) -> np.ndarray | None:
        """The archive rows a raw input keeps (its voiced frames), or None when it keeps all."""
        if not self.voiced_only:
            return None
        if self._kept[0] != utt:
            self._kept = (utt, {})
        rows = self._kept[1]
        if name not in rows:
            rows[name] = np.flatnonzero(load(self._spec(vads, name, utt, "vad.scp")) > 0.5)
        return rows[name]

    def _stats(self, name: str, cmvn: dict[str, str] | None, utt: str) -> np.ndarray | None:
        """Stage 1's statistics of the utterance's voiced frames before any archive compression (what
        `SpeakerModel` computes from the audio), if it wrote them."""
        if cmvn is None or not self.voiced_only:
            return None
        return read_rows(self._spec(cmvn, name, utt, CMVN_TABLE), 0, 1, key=utt)   # the sums and the count

    def num_frames(self, utt: str) -> int:
        """The frames `read(utt)` returns, from the matrix header or the VAD, without reading the features."""
        if utt in self._frames and all(vads is None for _, vads, _ in self._tables):
            return self._frames[utt]
        counts = set()
        for name, (feats, vads, _) in zip(self.names, self._tables):
            kept = self._kept_rows(name, vads, utt) if vads is not None else None
            counts.add(len(kept) if kept is not None else matrix_shape(self._spec(feats, name, utt), key=utt)[0])
        if len(counts) > 1:
            raise ArchiveError(f"{utt}: inputs {self.names} have different frame counts {sorted(counts)}; were "
                               f"they made with the same VAD setting?")
        return counts.pop()

    def read_crop(self, utt: str, start: int, length: int, sample: tuple[int, int] | None = None
                  ) -> list[np.ndarray]:
        """Frames [start, start + length) of what `read(utt)` returns, reading only the archive rows they span
        (`read_rows`): raw inputs are normalised with the utterance's mean from stage 1's `utt_cmvn.scp`.
        `sample` (epoch, position) seeds nothing here: archives hold fixed features (`AudioCropSource` draws)."""
        arrays = []
        for name, (feats, vads, cmvn) in zip(self.names, self._tables):
            spec = self._spec(feats, name, utt)
            if vads is None:  # LGP maps hold the kept frames only, already normalised
                arrays.append(read_rows(spec, start, start + length, key=utt))
                continue
            if cmvn is None or not self.voiced_only:  # no statistics (stage 1 before they existed): whole matrix
                arrays.append(self.read(utt)[self.names.index(name)][start:start + length])
                continue
            kept = self._kept_rows(name, vads, utt)
            first, last = int(kept[start]), int(kept[start + length - 1]) + 1
            rows = read_rows(spec, first, last, key=utt)[kept[start:start + length] - first]
            arrays.append(remove_mean(rows, self._stats(name, cmvn, utt)))
        return [np.asarray(a, dtype=np.float32) for a in arrays]   # CM rows stay column-major: (D x T) is free

    def dims(self) -> list[int]:
        """Feature dimension of each input (read from the first utterance)."""
        return [a.shape[1] for a in self.read(self.utts[0])]

    def utt2spk(self) -> dict[str, str]:
        return read_table(self.set_dir / "utt2spk")


def inputs_from_samples(samples: np.ndarray, options: MfccOptions, names: list[str],
                        gmms: Mapping[str, LGPExtractor], *, voiced_only: bool = True,
                        name: str = "<samples>") -> list[np.ndarray]:
    """The inputs `names` of one recording, from its samples (16-bit scale, at `options.sample_rate`) to what
    `FeatureSource.read` gives for an utterance of the recipe: stage 1's MFCC + VAD with the model's front end, then
    `inputs_from_mfcc`. The one path from audio to a model's input outside the stages (`SpeakerModel`, `export`);
    a FeatureError (silent, too short) names `name`."""
    try:
        feats, vad, fbank = features_and_vad(samples, options)
    except FeatureError as err:
        raise FeatureError(f"{name}: {err}") from err
    return inputs_from_mfcc(feats, vad, names, gmms, voiced_only=voiced_only, fbank=fbank)


def inputs_from_mfcc(feats: np.ndarray, vad: np.ndarray | None, names: list[str],
                     gmms: Mapping[str, LGPExtractor], *, voiced_only: bool = True,
                     fbank: np.ndarray | None = None) -> list[np.ndarray]:
    """The same inputs as `FeatureSource.read`, computed from one utterance's raw MFCC, VAD and (for `fbank`
    inputs) log mel filterbank, for `verify` and `SpeakerModel`.

    `lgp_<gmm>` is computed by `gmms[<gmm>]` (the model's own GMM, which trained it) exactly as stage 3 does.
    """
    frames = normalize_frames(feats, vad, voiced_only=voiced_only)
    arrays = []
    for name in names:
        if name == MFCC_INPUT:
            arrays.append(frames)
        elif name == FBANK_INPUT:
            if fbank is None:
                raise ValueError("input 'fbank' needs the log mel filterbank (features.fbank: true)")
            arrays.append(normalize_frames(fbank, vad, voiced_only=voiced_only))
        elif name.startswith(LGP_PREFIX):
            arrays.append(gmms[name[len(LGP_PREFIX):]](frames))
        else:
            raise ValueError(f"input {name!r} cannot be computed from audio; known: {MFCC_INPUT!r}, "
                             f"{FBANK_INPUT!r}, '{LGP_PREFIX}<gmm>'")
    return arrays
