"""Stage 0 (optional): speed perturbation as new speakers, as Kaldi's `utils/perturb_data_dir_speed.sh` (three-way).

The output data dir holds the source utterances and, for each factor f, a copy whose wav.scp entry pipes the audio
through `sox ... speed f` (pitch and tempo together, resampled back to the source rate), with utterance and speaker
ids prefixed `sp<f>-`: a voice sped up or slowed down is a different voice to a speaker classifier, so the copies
are new classes (WeSpeaker trains on three times the speakers this way). Durations are divided by f; genders and
languages follow the source. No audio is written: stage 1 runs the pipes, as Kaldi does.
"""
from __future__ import annotations

import shlex
import shutil
from pathlib import Path
from typing import Sequence

from pipeline.errors import PipelineError
from pipeline.utils.audio import audio_file_facts, files_key
from pipeline.utils.config import fingerprint
from pipeline.utils.datadir import DataDir, publish_data_dir, read_table
from pipeline.utils.log import get_logger
from pipeline.utils.stage import clear_done, file_digest, is_done, mark_done

DONE_NAME = "perturb_speed"


class SpeedPerturbError(PipelineError):
    """Bad speed factors, or sox missing."""


def prefix(factor: float) -> str:
    """Kaldi's id prefix: `sp0.9-`, `sp1.1-`."""
    return f"sp{factor:g}-"


def sox_speed(entry: str, factor: float) -> str:
    """The wav.scp entry of `entry` (a path, or a command ending in `|`) played at `factor` times the speed."""
    entry = entry.strip()
    if entry.endswith("|"):
        return f"{entry[:-1].rstrip()} | sox -t wav - -t wav - speed {factor:g} |"
    return f"sox {shlex.quote(entry)} -t wav - speed {factor:g} |"


def check_factors(factors: Sequence[float]) -> list[float]:
    out = [float(f) for f in factors]
    bad = [f for f in out if not 0.5 <= f <= 2.0 or f == 1.0]
    if bad or len(set(out)) != len(out):
        raise SpeedPerturbError(f"speed factors {out}: each must be distinct, within [0.5, 2], and not 1 (the "
                                f"source itself is always kept)")
    return out


def speed_perturbed(src: DataDir, factor: float) -> DataDir:
    """The copy of `src` at `factor` times the speed, as new speakers `sp<f>-<spk>` (no trials, no features)."""
    p = prefix(factor)
    utt_tables = {"wav.scp": {p + u: sox_speed(w, factor) for u, w in src.table("wav.scp").items()},
                  "utt2spk": {p + u: p + s for u, s in src.utt2spk.items()}}
    if "utt2dur" in src.utt_tables:
        utt_tables["utt2dur"] = {p + u: f"{float(d) / factor:.3f}" for u, d in src.utt_tables["utt2dur"].items()}
    for name in ("utt2lang", "text"):
        if name in src.utt_tables:
            utt_tables[name] = {p + u: v for u, v in src.utt_tables[name].items()}
    spk_tables = {name: {p + s: v for s, v in table.items()} for name, table in src.spk_tables.items()}
    return DataDir(utt_tables, spk_tables)


def perturb_data_dir_speed(src_dir: Path, dst_dir: Path, factors: Sequence[float], *,
                           log_dir: Path | None = None) -> bool:
    """Write `dst_dir` = `src_dir` + one speed-perturbed copy per factor; return False when it is already complete
    and current for the same source and factors (nothing done)."""
    factors = check_factors(factors)
    if src_dir.resolve() == dst_dir.resolve():
        raise SpeedPerturbError(f"perturb-speed {src_dir} {dst_dir}: the output must be a new data dir")
    if shutil.which("sox") is None:
        raise SpeedPerturbError("speed perturbation plays the audio through sox, which is not installed "
                                "(Debian/Ubuntu: apt-get install sox)")
    log = get_logger("perturb_speed", (log_dir or Path("exp/perturb_speed") / dst_dir.name) / "perturb_speed.log")
    src = DataDir.load(src_dir)
    src.validate(src_dir, check_files=False)
    tables = [(name, file_digest(src_dir / name)) for name in ("wav.scp", "utt2spk", "utt2dur", "spk2gender")
              if (src_dir / name).is_file()]
    key = fingerprint(factors, tables, files_key(audio_file_facts(read_table(src_dir / "wav.scp"))))
    if is_done(dst_dir, DONE_NAME, key):
        log.info("%s: speed-perturbed copy of %s is complete and current, nothing to do", dst_dir, src_dir)
        return False
    clear_done(dst_dir, DONE_NAME)
    source = DataDir(dict(src.utt_tables), dict(src.spk_tables))  # the utterances, without trials or features
    for name in ("feats.scp", "vad.scp", "utt2num_frames", "unusable_utts"):
        source.utt_tables.pop(name, None)
    combined = DataDir.combine([source] + [speed_perturbed(source, f) for f in factors])
    publish_data_dir(combined, dst_dir, check_files=False)
    log.info("%s: %s (speeds 1, %s as new speakers)", dst_dir, combined.summary(),
             ", ".join(f"{f:g}" for f in factors))
    mark_done(dst_dir, DONE_NAME, key, [dst_dir / "wav.scp", dst_dir / "utt2spk"])
    return True
