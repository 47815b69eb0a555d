"""The whole rehearsal build: synthesise every speaker (one job a person), lay the audio out as VoxCeleb1 (wav),
VoxCeleb2 (m4a), MUSAN and RIRS_NOISES, write the meta files and trial lists. Deterministic for a seed whatever
--nj; built aside and swapped in whole; a second run with the same inputs does nothing.
"""
from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from local.demo import tts_voices as tts
from local.demo.clean_speech import clean_speech_job, tts_job
from local.rehearsal import noise_trees, voxceleb_tree
from local.rehearsal.celebrities import MUSAN_SPEECH, VOXCELEB1, VOXCELEB2, assign_voices, rehearsal_voices
from pipeline.errors import PipelineError
from pipeline.utils.atomic import swap_in_directory
from pipeline.utils.config import fingerprint
from pipeline.utils.jobs import run_jobs
from pipeline.utils.log import get_logger
from pipeline.utils.stage import file_digest, is_done, mark_done

PACKAGE_DIR = Path(__file__).resolve().parent
REPO = PACKAGE_DIR.parents[1]
# The code the corpora are made with: a change there rebuilds them.
SOURCE_CODE = sorted(PACKAGE_DIR.glob("*.py")) + [REPO / "local" / "demo" / name for name in (
    "tts_engines.py", "tts_plan.py", "tts_voices.py", "dsp.py", "voices.tsv")] + [
    REPO / "pipeline" / "augment" / name for name in ("noise.py", "rir.py", "seeding.py")]
DONE_NAME = "rehearsal_corpora"
CORPORA = ("VoxCeleb1", "VoxCeleb2", "RIRS_NOISES", "musan")
MUSAN_SPEECH_SECONDS = (6.0, 9.0)

log = get_logger("rehearsal")


class RehearsalError(PipelineError, RuntimeError):
    """The rehearsal corpora cannot be built; the message says what is missing."""


def make_rehearsal_corpora(out: str | os.PathLike, *, nj: int = 2, seed: int = 0, utts_per_speaker: int = 2,
                           min_dur: float = 2.0, max_dur: float = 3.0) -> Path:
    """Build `out`/{VoxCeleb1,VoxCeleb2,RIRS_NOISES,musan}; return `out`. Needs ffmpeg and flite or MBROLA voices."""
    out = Path(os.path.abspath(out))
    if shutil.which("ffmpeg") is None:
        raise RehearsalError("ffmpeg not found: it encodes VoxCeleb2's m4a files here, and the recipe decodes them "
                             "through it; install it (Debian: apt-get install --no-install-recommends ffmpeg)")
    if utts_per_speaker < 2:
        raise RehearsalError(f"--utts-per-speaker {utts_per_speaker}: target trials need 2 utterances a speaker")
    try:
        voices = rehearsal_voices(seed)
    except tts.SynthesisError as err:
        raise RehearsalError(str(err)) from err
    people = [p for p in VOXCELEB1 + VOXCELEB2 if p.on_disk] + list(MUSAN_SPEECH)
    speakers = assign_voices(people, voices)
    key = fingerprint(DONE_NAME, seed, utts_per_speaker, min_dur, max_dur, sorted(
        (s.id, s.voices) for s in speakers.values()), [file_digest(p) for p in SOURCE_CODE])
    if is_done(out, DONE_NAME, key):
        log.info(f"{out}: the rehearsal corpora are built and current, nothing to do")
        return out

    start = time.time()
    staged = out.with_name(f".{out.name}.partial")
    shutil.rmtree(staged, ignore_errors=True)
    clean_dir = staged / "clean"
    clean_dir.mkdir(parents=True)
    common = dict(seed=seed, text_dir=str(tts.DEFAULT_TEXT_DIR), clean_dir=str(clean_dir))
    jobs = [dict(job=tts_job, speaker=speakers[p.id], n_utts=utts_per_speaker, min_dur=min_dur, max_dur=max_dur,
                 **common) for p in people if p not in MUSAN_SPEECH]
    jobs += [dict(job=tts_job, speaker=speakers[p.id], n_utts=1, min_dur=MUSAN_SPEECH_SECONDS[0],
                  max_dur=MUSAN_SPEECH_SECONDS[1], **common) for p in MUSAN_SPEECH]
    clean: dict[str, list[str]] = {}
    for made in run_jobs(clean_speech_job, jobs, nj=nj, name="rehearsal_speech"):
        for utt in sorted(made, key=lambda c: c.utt):
            clean.setdefault(utt.speaker, []).append(utt.wav)
    log.info(f"synthesised {sum(map(len, clean.values()))} utterances of {len(clean)} speakers "
             f"({time.time() - start:.1f} s)")

    vox1_paths = voxceleb_tree.layout(VOXCELEB1, utts_per_speaker, seed, "wav")
    names = {p: speakers[p].voices[0].replace(":", "_") for p in vox1_paths}
    voxceleb_tree.write_voxceleb1(staged / "VoxCeleb1", VOXCELEB1, names, vox1_paths, clean, seed)
    vox2_paths = voxceleb_tree.layout(VOXCELEB2, utts_per_speaker, seed, "m4a")
    voxceleb_tree.write_voxceleb2(staged / "VoxCeleb2", VOXCELEB2, vox2_paths, clean, nj)
    noise_trees.write_rirs_noises(staged / "RIRS_NOISES", seed)
    noise_trees.write_musan(staged / "musan", [w for p in MUSAN_SPEECH for w in clean[p.id]], seed)
    shutil.rmtree(clean_dir)

    outputs = [staged / "VoxCeleb1" / "vox1_meta.csv", staged / "VoxCeleb2" / "vox2_meta.csv",
               *(staged / "VoxCeleb1" / name for name in voxceleb_tree.VOX1_TRIAL_LISTS.values()),
               *(staged / "RIRS_NOISES" / "simulated_rirs" / s / "rir_list" for s in noise_trees.ROOM_SETS)]
    mark_done(staged, DONE_NAME, key, outputs)
    swap_in_directory(staged, out)
    log.info(f"{out}: {', '.join(CORPORA)} ({len(vox1_paths)} + {len(vox2_paths)} speakers, {utts_per_speaker} "
             f"utterances each) in {time.time() - start:.1f} s")
    return out
