"""Speed perturbation as new speakers (stage 0, steps/perturb_data_dir_speed.sh)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile

from pipeline.stages import perturb_speed as stage
from pipeline.stages.make_mfcc import make_mfcc
from pipeline.features.mfcc import MfccOptions
from pipeline.utils.audio import read_wav_scp_entry
from pipeline.utils.datadir import DataDir, read_table, write_table
from synthetic_corpus import make_corpus

pytestmark = pytest.mark.skipif(shutil.which("sox") is None, reason="sox is not installed (tests/run.sh installs it)")
ROOT = Path(__file__).resolve().parents[1]


def dominant_hz(samples: np.ndarray, rate: int = 16000) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.argmax(spectrum) * rate / len(samples))


def test_copies_are_new_speakers_at_the_new_speed(tmp_path):
    data = make_corpus(tmp_path, "train", 2, 2)
    tone = (np.sin(2 * np.pi * 1000 * np.arange(32000) / 16000) * 10000).astype(np.int16)
    wav = DataDir.load(data).table("wav.scp")
    first = DataDir.load(data).utts[0]
    soundfile.write(wav[first], tone, 16000)
    write_table(data / "spk2gender", {"spk000": "m", "spk001": "f"})
    write_table(data / "utt2dur", {u: f"{soundfile.info(p).duration:.3f}" for u, p in wav.items()})
    assert stage.perturb_data_dir_speed(data, tmp_path / "train_sp", [0.9, 1.1])
    out = DataDir.load(tmp_path / "train_sp")
    out.validate(tmp_path / "train_sp")
    src = DataDir.load(data)
    assert len(out.utts) == 3 * len(src.utts) and len(out.spks) == 3 * len(src.spks)
    assert out.utt2spk[f"sp0.9-{first}"] == f"sp0.9-{src.utt2spk[first]}"
    assert out.table("spk2gender")["sp1.1-spk001"] == "f" and out.table("spk2gender")["spk000"] == "m"
    assert out.table("wav.scp")[first] == wav[first]   # the source itself is kept as it is
    for factor in (0.9, 1.1):
        utt = f"sp{factor:g}-{first}"
        samples, rate = read_wav_scp_entry(out.table("wav.scp")[utt], 16000)
        assert rate == 16000 and abs(len(samples) - 32000 / factor) <= 2
        assert dominant_hz(samples) == pytest.approx(1000 * factor, abs=5)   # pitch and tempo together
        assert float(out.table("utt2dur")[utt]) == pytest.approx(float(src.table("utt2dur")[first]) / factor,
                                                                    abs=1e-3)
    # Stage 1 reads the pipes as any wav.scp entry.
    make_mfcc(tmp_path / "train_sp", tmp_path / "mfcc", tmp_path / "log", MfccOptions(), nj=2)
    assert len(read_table(tmp_path / "train_sp" / "feats.scp")) == 3 * len(src.utts)


def test_rerun_is_a_noop_and_changes_are_picked_up(tmp_path):
    data = make_corpus(tmp_path, "train", 2, 2)
    out = tmp_path / "train_sp"
    assert stage.perturb_data_dir_speed(data, out, [0.9, 1.1])
    assert not stage.perturb_data_dir_speed(data, out, [0.9, 1.1])
    assert stage.perturb_data_dir_speed(data, out, [0.95])   # other factors: redone, old copies gone
    assert {u.split("-")[0] for u in DataDir.load(out).utts if u.startswith("sp0") or u.startswith("sp1")} == {"sp0.95"}
    # A recording changed under the same path changes the key, through the pipe, for this stage and stage 1.
    make_mfcc(out, tmp_path / "mfcc", tmp_path / "log", MfccOptions(), nj=1)
    path = Path(DataDir.load(data).table("wav.scp")[DataDir.load(data).utts[0]])
    samples, rate = soundfile.read(path, dtype="int16")
    soundfile.write(path, samples[: len(samples) // 2], rate)
    assert stage.perturb_data_dir_speed(data, out, [0.95])
    assert not (out / "feats.scp").exists()   # the old features left with the old dir


def test_piped_sources_and_bad_input(tmp_path, monkeypatch):
    data = make_corpus(tmp_path, "train", 1, 2)
    wav = DataDir.load(data).table("wav.scp")
    write_table(data / "wav.scp", {u: f"cat {p} |" for u, p in wav.items()})
    stage.perturb_data_dir_speed(data, tmp_path / "sp", [1.1])
    utt = DataDir.load(data).utts[0]
    entry = DataDir.load(tmp_path / "sp").table("wav.scp")[f"sp1.1-{utt}"]
    assert entry == f"cat {wav[utt]} | sox -t wav - -t wav - speed 1.1 |"
    assert abs(len(read_wav_scp_entry(entry)[0]) - len(read_wav_scp_entry(wav[utt])[0]) / 1.1) <= 2
    with pytest.raises(stage.SpeedPerturbError, match="not 1"):
        stage.perturb_data_dir_speed(data, tmp_path / "x", [1.0, 1.1])
    with pytest.raises(stage.SpeedPerturbError, match="new data dir"):
        stage.perturb_data_dir_speed(data, data, [1.1])
    monkeypatch.setattr(stage.shutil, "which", lambda name: None)
    with pytest.raises(stage.SpeedPerturbError, match="apt-get install sox"):
        stage.perturb_data_dir_speed(data, tmp_path / "y", [1.1])


def test_step_script_takes_factors_and_errors_in_one_line(tmp_path):
    data = make_corpus(tmp_path, "train", 1, 2)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    step = [str(ROOT / "steps/perturb_data_dir_speed.sh")]
    ok = subprocess.run(step + ["--factors", "0.9 1.1", str(data), str(tmp_path / "sp")], env=env, cwd=tmp_path,
                        capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert len(DataDir.load(tmp_path / "sp").utts) == 6
    bad = subprocess.run(step + ["--factors", "3", str(data), str(tmp_path / "sp3")], env=env, cwd=tmp_path,
                         capture_output=True, text=True)
    assert bad.returncode == 1 and "within [0.5, 2]" in bad.stderr and "Traceback" not in bad.stderr
