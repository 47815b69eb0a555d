"""A peer row for the results table: a data dir's trials lists scored by Resemblyzer (the GE2E LSTM speaker encoder,
pretrained on real speech, its weights inside the wheel), with the recipe's metrics and bootstrap intervals.

    python bench/bench_resemblyzer.py [--data-dir data/test] [--recipe-dir .] [--out-dir exp/peer_resemblyzer]

Resemblyzer is never a dependency of the recipe: it lives in its own environment, `bench/.venv-resemblyzer`, which
the first run creates (`python -m venv`, then pip: the recipe's CPU torch pin first, webrtcvad-wheels, Resemblyzer's
other requirements, Resemblyzer itself without its dependencies) and later runs reuse. Two processes, one per
environment, so that each side is read by the code that owns it:
- this one, in the recipe's environment, reads the data dir with the recipe's readers (wav.scp paths or `cmd |`
  pipes, any rate resampled to 16 kHz, relative paths from `--recipe-dir`), and streams the samples to
- `bench/resemblyzer_embed.py`, in the peer's environment, which embeds each utterance (`preprocess_wav`, then
  `VoiceEncoder.embed_utterance`) and writes the embeddings;
then this one scores every `trials*` list by cosine and computes the columns of stage 6's rows (EER, its 95% interval
from the bootstrap over test speakers, minDCF at p_target 0.01 and 0.001) with the recipe's own code. Trials naming
an utterance stage 1 found unusable are left out, as stage 6 does. No AS-Norm: a peer scored as published.

Writes, in `--out-dir`: `<set>_<trials>.json` (a row), `<set>_<trials>.score`, `<set>.embeddings.npz` and
`<set>.facts.json` (versions, times), `results.md` (every peer row there) and, when `--exp-dir` holds stage 6's
rows, `results_beside_recipe.md` (those rows and the peer's in one table). Prints the figures.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import platform
import re
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import click
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.errors import PipelineError  # noqa: E402

PEER = "resemblyzer"  # the model column of its rows
PEER_PACKAGE = "Resemblyzer==0.1.4"
# Resemblyzer requires webrtcvad, an sdist that needs a C compiler and imports pkg_resources, which setuptools >= 81
# no longer has; webrtcvad-wheels is the same module, prebuilt. So Resemblyzer goes in with --no-deps, after its
# other requirements (less `typing`, in the standard library since Python 3.5).
PEER_REQUIREMENTS = ("webrtcvad-wheels==2.0.14.post1", "librosa>=0.9.1", "numpy>=1.20.0", "scipy>=1.2.1")
FRONT_END = "40 mel, webrtcvad silence trimming, 1.6 s partials (GE2E LSTM, pretrained on real speech)"
EMBEDDER = Path(__file__).resolve().parent / "resemblyzer_embed.py"
SAMPLE_RATE = 16000
STAMP = ".bench-resemblyzer-installed"  # in the peer environment: the install steps it holds


class PeerError(PipelineError):
    """Something the peer needs is missing or failed; the message says what and where."""


def torch_pin() -> str:
    """The recipe's CPU torch pin, from its one home (steps/install.sh), so the peer gets the same wheel."""
    match = re.search(r'^TORCH_PIN="([^"]+)"', (ROOT / "steps" / "install.sh").read_text(), re.MULTILINE)
    if not match:
        raise PeerError(f"{ROOT / 'steps' / 'install.sh'}: no TORCH_PIN line, so no CPU torch to pin")
    return match.group(1)


def install_steps() -> list[list[str]]:
    """The pip installs, in order: torch first, then everything else with the pin repeated so that nothing
    replaces it (a torch resolved freely is a multi-GB CUDA build)."""
    pin = torch_pin()
    return [[pin], [*PEER_REQUIREMENTS, pin], ["--no-deps", PEER_PACKAGE]]


def run_logged(command: list[str], log_path: Path, what: str) -> None:
    """Run `command` with its output appended to `log_path`; a PeerError with its last error line (or last line)
    if it fails."""
    with open(log_path, "a", encoding="utf-8") as log:
        log.write(f"$ {' '.join(command)}\n")
        log.flush()
        proc = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, check=False)
    if proc.returncode != 0:
        lines = [line for line in log_path.read_text(encoding="utf-8").splitlines() if line.strip()]
        errors = [line for line in lines if line.startswith("ERROR")] or lines or ["no output"]
        raise PeerError(f"{what} failed (exit {proc.returncode}): {errors[-1]} "
                        f"(full output in {log_path})")


def peer_python(venv: Path, log: logging.Logger) -> tuple[Path, float]:
    """The peer environment's python, created or completed if needed; and the seconds that took (0 if reused)."""
    python = venv / "bin" / "python"
    steps = install_steps()
    want = hashlib.sha1(json.dumps(steps).encode()).hexdigest()[:16]
    stamp = venv / STAMP
    if python.is_file() and stamp.is_file() and stamp.read_text().strip() == want:
        return python, 0.0
    start = time.perf_counter()
    venv.mkdir(parents=True, exist_ok=True)
    log_path = venv / "install.log"
    if not python.is_file():
        log.info("creating the peer environment %s", venv)
        run_logged([sys.executable, "-m", "venv", str(venv)], log_path,
                   f"python -m venv {venv} (Debian/Ubuntu: install python3-venv)")
    run_logged([str(python), "-m", "pip", "--version"], log_path, f"pip in {venv}")
    for step in steps:
        log.info("pip install %s", " ".join(step))
        run_logged([str(python), "-m", "pip", "install", "-q", *step], log_path, f"pip install {' '.join(step)}")
    stamp.write_text(want + "\n")
    return python, time.perf_counter() - start


def embed_utterances(python: Path, wav_scp: dict[str, str], utts: list[str], scp_path: Path, recipe_dir: Path,
                     out: Path, facts: Path, threads: int) -> None:
    """Stream the utterances' samples (the recipe's wav.scp reader, 16 kHz, [-1, 1]) to the peer's embedder, which
    writes `out` (.npz) and `facts` (.json); `scp_path` is where `wav_scp` came from, for messages."""
    from pipeline.utils.audio import PCM16_SCALE, AudioError, read_wav_scp_entry

    proc = subprocess.Popen([str(python), str(EMBEDDER), "--out", str(out), "--facts", str(facts),
                             "--count", str(len(utts)), "--threads", str(threads)], stdin=subprocess.PIPE)
    try:
        with contextlib.chdir(recipe_dir):   # where the recipe reads relative paths and runs pipes
            for utt in utts:
                try:
                    samples, _ = read_wav_scp_entry(wav_scp[utt], SAMPLE_RATE, resample=True)
                except AudioError as err:
                    raise PeerError(f"{scp_path}: {utt}: {err} (relative paths and pipes are read "
                                    f"from --recipe-dir, here {recipe_dir})") from err
                data = (samples / PCM16_SCALE).astype("<f4")
                proc.stdin.write(f"{utt} {data.size}\n".encode() + data.tobytes())
        proc.stdin.close()
    except BrokenPipeError:
        pass  # the embedder stopped: its exit status below says so
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    if proc.wait() != 0:
        raise PeerError(f"{EMBEDDER.name} stopped with exit status {proc.returncode} (its message is above)")


def load_embeddings(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as archive:
        return dict(zip(archive["utts"].tolist(), archive["embeddings"]))


def peer_rows(out_dir: Path) -> list[dict]:
    """Every peer row in `out_dir`, in stage 6's order (trials, then model)."""
    rows = [json.loads(p.read_text()) for p in sorted(out_dir.glob("*.json")) if not p.name.endswith(".facts.json")]
    return sorted(rows, key=lambda r: (r["trials"], r["model"]))


@click.command()
@click.option("--data-dir", default="data/test", show_default=True, type=click.Path(path_type=Path),
              help="a Kaldi data dir with wav.scp, utt2spk and trials* lists")
@click.option("--recipe-dir", default=".", show_default=True, type=click.Path(path_type=Path),
              help="where relative wav.scp paths start and pipes run (the recipe directory)")
@click.option("--out-dir", default="exp/peer_resemblyzer", show_default=True, type=click.Path(path_type=Path))
@click.option("--exp-dir", default="exp", show_default=True, type=click.Path(path_type=Path),
              help="stage 6's experiments, whose rows go beside the peer's")
@click.option("--venv", default=str(ROOT / "bench" / ".venv-resemblyzer"), show_default=True,
              type=click.Path(path_type=Path), help="the peer's own environment, created if missing")
@click.option("--replicates", default=1000, show_default=True, help="bootstrap replicates (stage 6's default)")
@click.option("--threads", default=1, show_default=True, help="torch threads of the embedder")
def main(data_dir: Path, recipe_dir: Path, out_dir: Path, exp_dir: Path, venv: Path, replicates: int,
         threads: int) -> None:
    logging.basicConfig(level=logging.INFO, format="bench_resemblyzer.py: %(message)s")
    log = logging.getLogger("bench_resemblyzer")
    try:
        score_peer(data_dir.resolve(), recipe_dir.resolve(), out_dir.resolve(), exp_dir.resolve(), venv.resolve(),
                   replicates, threads, log)
    except PipelineError as err:
        sys.exit(f"bench_resemblyzer.py: {err}")


def score_peer(data_dir: Path, recipe_dir: Path, out_dir: Path, exp_dir: Path, venv: Path, replicates: int,
               threads: int, log: logging.Logger) -> None:
    from pipeline.scoring import metric_columns, results_table, score_trials, write_scores
    from pipeline.scoring.metrics import compute_eer
    from pipeline.stages.score import PRIVATE_FIELDS, collect_results, interval_columns, usable_trials
    from pipeline.utils.atomic import write_text_atomic
    from pipeline.utils.datadir import DataDir, evaluation_lists
    from pipeline.utils.trials import read_trials

    lists = evaluation_lists(data_dir)
    data = DataDir.load(data_dir)
    set_name = data_dir.name
    trials = {}
    for path in lists:
        listed = read_trials(path)
        usable = usable_trials(listed, data, log)
        usable.check_speakers(data.utt2spk, data_dir / "utt2spk")   # else the bootstrap fails
        trials[path.name] = (listed, usable)
    utts = sorted({u for _, t in trials.values() for u in t.enroll.tolist() + t.test.tolist()}, key=str.encode)

    python, install_s = peer_python(venv, log)
    log.info("peer environment %s (%s)", venv, f"installed in {install_s:.0f} s" if install_s else "reused")
    out_dir.mkdir(parents=True, exist_ok=True)
    npz, facts_path = out_dir / f"{set_name}.embeddings.npz", out_dir / f"{set_name}.facts.json"
    log.info("embedding %d utterances of %s with %s", len(utts), data_dir, PEER_PACKAGE)
    start = time.perf_counter()
    embed_utterances(python, data.table("wav.scp"), utts, data_dir / "wav.scp", recipe_dir, npz, facts_path, threads)
    embed_s = time.perf_counter() - start
    facts = json.loads(facts_path.read_text())
    embeddings = load_embeddings(npz)

    start = time.perf_counter()
    for name, (listed, usable) in trials.items():
        scores = score_trials(embeddings, usable)
        write_scores(out_dir / f"{set_name}_{name}.score", usable, scores)
        row = {"model": PEER, "params": f"{facts['params'] / 1e6:.2f} M", "front end": FRONT_END,
               "trials": f"{set_name}/{name}", "trials scored": f"{len(usable):,} of {len(listed):,}"}
        row.update(metric_columns(scores, usable.labels))
        row.update(interval_columns(scores, usable, data.utt2spk, replicates))
        row["EER threshold"] = float(compute_eer(scores, usable.labels)[1])
        write_text_atomic(out_dir / f"{set_name}_{name}.json", json.dumps(row, indent=1))
        print(f"{PEER} {set_name}/{name}: EER {row['EER %']:.2f}% {row['EER 95% CI']}, "
              f"minDCF0.01 {row['minDCF0.01']:.4f}, minDCF0.001 {row['minDCF0.001']:.4f} "
              f"({row['trials scored']} trials)")
    score_s = time.perf_counter() - start

    facts.update({"data dir": str(data_dir), "date": date.today().isoformat(), "machine": platform.node(),
                  "cpus": os.cpu_count(), "install_s": install_s, "embed_and_read_s": embed_s, "score_s": score_s,
                  "replicates": replicates})
    write_text_atomic(facts_path, json.dumps(facts, indent=1))
    print(f"{len(utts)} utterances, {facts['audio_s'] / 60:.1f} min of audio, embedded in {embed_s:.0f} s "
          f"({facts['audio_s'] / embed_s:.0f}x real time, {threads} torch thread(s)); {len(facts['vad_emptied'])} "
          f"emptied by the VAD and embedded whole; scoring and bootstrap {score_s:.0f} s; install {install_s:.0f} s")

    public = [{k: v for k, v in r.items() if k not in PRIVATE_FIELDS} for r in peer_rows(out_dir)]
    write_text_atomic(out_dir / "results.md", results_table(public) + "\n")
    with contextlib.chdir(recipe_dir):   # stage 6's rows name their embeddings relative to the recipe directory
        recipe_rows = collect_results(exp_dir) if exp_dir.is_dir() else []
    if recipe_rows:
        rows = sorted(recipe_rows + peer_rows(out_dir), key=lambda r: (r["trials"], r["model"]))
        table = results_table([{k: v for k, v in r.items() if k not in PRIVATE_FIELDS} for r in rows])
        write_text_atomic(out_dir / "results_beside_recipe.md", table + "\n")
        print(f"\n{out_dir / 'results_beside_recipe.md'}:\n{table}")
    else:
        print(f"\n{out_dir / 'results.md'} (no current stage 6 rows in {exp_dir} to show beside it):\n"
              f"{results_table(public)}")


if __name__ == "__main__":
    main()
