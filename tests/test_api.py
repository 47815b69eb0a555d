"""The trained models used from Python and shipped: SpeakerModel against the recipe's own scores, enrolment and
identification, batch scoring of a user's pairs, ONNX and TorchScript export.

The recipe is the session's `trained_recipe` (stages 1-6 through run.sh; conftest.py): trained on the synthetic
corpus, it tests on real synthesised speech too: four flite voices (tests/run.sh installs flite), three sentences
each, are speakers of its test set.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
from scipy.signal import resample_poly

from pipeline.dataset.features import FeatureSource
from pipeline.embedding_files import load_embeddings
from pipeline.speaker_model import SpeakerModel
from pipeline.utils.datadir import DataDir, write_table
from recipe_dirs import FLITE_VOICES


REPO = Path(__file__).resolve().parents[1]
NETWORKS = ["gmm_resnext", "dgmm_resnext", "resnet34"]

pytestmark = [pytest.mark.skipif(shutil.which("flite") is None, reason="flite is not installed (tests/run.sh does)"),
              pytest.mark.e2e]   # a recipe trained through run.sh: not in tests/run.sh --fast


@pytest.fixture(scope="module")
def api_recipe(tmp_path_factory, trained_recipe):
    """A copy of the session's trained recipe: enrolment writes its speaker tables into it."""
    return trained_recipe.copy_to(tmp_path_factory.mktemp("api") / "recipe")


def cosine_distance(a: np.ndarray, b: np.ndarray) -> float:
    return 1.0 - float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def is_flite_voice(utt: str) -> bool:
    return utt.split("-")[0] in FLITE_VOICES


def wav_paths(root: Path) -> dict[str, str]:
    """The test set's recordings, by utterance: absolute paths (wav.scp names them relative to the recipe)."""
    return {utt: str(root / path) for utt, path in DataDir.load(root / "data/test").table("wav.scp").items()}


def cli(root: Path, *args: str, ok: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "pipeline", *args], cwd=root, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    if ok:
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    else:
        assert proc.returncode != 0 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    return proc


def recipe_scores(root: Path, model: str) -> dict[tuple[str, str], float]:
    lines = (root / f"exp/{model}/scores/test_trials_O.score").read_text().split("\n")
    return {(a, b): float(s) for a, b, s in (line.split()[:3] for line in lines if line)}


@pytest.mark.parametrize("model", NETWORKS + ["gmm_ubm"])
def test_speaker_model_scores_real_speech_as_the_recipe(api_recipe, model):
    speaker_model = SpeakerModel.load(api_recipe / "exp" / model)
    wavs = wav_paths(api_recipe)
    scores = recipe_scores(api_recipe, model)
    for (a, b) in list(scores)[::7][:6]:
        assert speaker_model.score(wavs[a], wavs[b]) == pytest.approx(scores[(a, b)], abs=1e-5)
    # And from samples in memory at another rate, resampled to the model's as --eval-data would: the recording at
    # 22.05 kHz gives its 16 kHz vector, much nearer to it than another recording of the same voice is.
    # Measured, in cosine distance, for the four models: 0 to 2e-5, at most 1/4000 of the other recording's
    # (2e-4 to 0.15); the same samples taken for 16 kHz ones land 0.2 to 1.8 times as far as that recording.
    samples, rate = soundfile.read(wavs["awb-01"], dtype="int16")
    assert rate == 16000
    at_22k = resample_poly(samples / 32768.0, 441, 320)   # 22050 / 16000
    own, other = (speaker_model.embed(wavs[utt])[0] for utt in ("awb-01", "awb-02"))
    assert cosine_distance(speaker_model.embed((at_22k, 22050))[0], own) < cosine_distance(own, other) / 50


def test_enrol_identify_replace_and_refuse(api_recipe, tmp_path):
    root = api_recipe
    wavs = wav_paths(root)
    model = ["--model", "exp/gmm_resnext"]
    for voice in ("awb", "slt", "rms"):
        cli(root, "enroll", *model, "--name", voice, wavs[f"{voice}-01"], wavs[f"{voice}-02"])
    table = root / "exp/gmm_resnext/speakers"
    assert (table / "spk2num_utts").read_text() == "awb 2\nrms 2\nslt 2\n"
    out = cli(root, "identify", *model, wavs["slt-03"], "--top", "3", "--threshold", "-1").stdout
    assert out.split("\n")[0].split()[1] == "slt" and len(out.strip().split("\n")) == 4
    # Below the threshold: unknown, with the ranking still listed.
    assert cli(root, "identify", *model, wavs["kal16-01"], "--threshold", "2").stdout.split()[1] == "unknown"
    # By default stage 6's identification calibration decides among the table's 3 people and "unknown", with the
    # best one's LLR, and it is named; a list given decides at its EER threshold.
    out = cli(root, "identify", *model, wavs["awb-03"]).stdout
    assert "identification calibration on" in out and "among 3 enrolled" in out and "LLR" in out
    assert "EER threshold on test/trials_O" in cli(root, "identify", *model, wavs["awb-03"], "--trials",
                                                   "test/trials_O").stdout
    # Re-enrolling replaces; a bad recording changes nothing.
    before = (table / "speakers.ark").read_bytes()
    silent = tmp_path / "silent.wav"
    soundfile.write(silent, np.zeros(16000, dtype=np.int16), 16000)
    proc = cli(root, "enroll", *model, "--name", "awb", wavs["awb-03"], str(silent), ok=False)
    assert str(silent) in proc.stderr and len(proc.stderr.strip().split("\n")) == 1
    assert (table / "speakers.ark").read_bytes() == before
    cli(root, "enroll", *model, "--name", "awb", wavs["awb-03"])
    assert (table / "spk2num_utts").read_text().split("\n")[0] == "awb 1"
    # Names are Kaldi keys; a table of another model is refused.
    assert "whitespace" in cli(root, "enroll", *model, "--name", "a b", wavs["awb-01"], ok=False).stderr
    proc = cli(root, "identify", "--model", "exp/dgmm_resnext", "--table", str(table), wavs["awb-01"], ok=False)
    assert "gmm_resnext" in proc.stderr and "another --table" in proc.stderr
    other = tmp_path / "other"
    cli(root, "enroll", "--model", "exp/dgmm_resnext", "--table", str(other), "--name", "x", wavs["awb-01"])
    assert (table / "spk2num_utts").read_text().count("\n") == 3   # the default table untouched


def test_score_pairs_embeds_each_file_once_and_counts_failures(api_recipe, tmp_path):
    root = api_recipe
    wavs = wav_paths(root)
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF0000WAVEgarbage")
    pairs = tmp_path / "pairs.txt"
    pairs.write_text(f"{wavs['awb-01']} {wavs['awb-02']}\n{wavs['awb-01']} {wavs['slt-01']}\n"
                     f"{wavs['slt-01']} {broken}\n{wavs['awb-02']} {wavs['slt-01']}\n")
    out = tmp_path / "scores.txt"
    proc = cli(root, "score-pairs", "--model", "exp/gmm_resnext", "--nj", "2", str(pairs), "--out", str(out))
    lines = out.read_text().strip().split("\n")
    assert len(lines) == 3 and f"failed: {wavs['slt-01']} {broken}" in proc.stderr
    assert "3 of 4 pairs scored (1 failed), 3 of 4 recordings embedded once each" in proc.stderr
    speaker_model = SpeakerModel.load(root / "exp/gmm_resnext")
    a, b, score = lines[0].split()
    assert float(score) == pytest.approx(speaker_model.score(a, b), abs=1e-5)
    # A Kaldi data dir and trials: the recipe's own scores, on the 66 pairs of flite voices of its trials_O (every
    # recording a list names is embedded: the synthetic speakers would add time, not checks).
    trials = tmp_path / "trials_flite"
    trials.write_text("".join(f"{line}\n" for line in (root / "data/test/trials_O").read_text().splitlines()
                              if all(map(is_flite_voice, line.split()[:2]))))
    out2 = tmp_path / "scores2.txt"
    cli(root, "score-pairs", "--model", "exp/gmm_resnext", "--data-dir", "data/test", "--trials", str(trials),
        "--out", str(out2))
    recipe = {pair: s for pair, s in recipe_scores(root, "gmm_resnext").items() if all(map(is_flite_voice, pair))}
    got = {(a, b): float(s) for a, b, s in (line.split() for line in out2.read_text().strip().split("\n"))}
    assert got.keys() == recipe.keys() and len(got) == 66
    assert max(abs(got[k] - recipe[k]) for k in got) < 1e-5
    bad = tmp_path / "bad_pairs.txt"
    bad.write_text("only_one_field\n")
    assert f"{bad}:1" in cli(root, "score-pairs", "--model", "exp/gmm_resnext", str(bad), ok=False).stderr


@pytest.mark.parametrize("model", NETWORKS)
def test_onnx_export_equals_torch_on_real_speech(api_recipe, tmp_path, model):
    import onnxruntime

    from pipeline.export import exportable, frames_from_audio, read_onnx_metadata

    root = api_recipe
    onnx_file = tmp_path / f"{model}.onnx"
    cli(root, "export", "--model", f"exp/{model}", "--format", "onnx", "--out", str(onnx_file))
    speaker_model = SpeakerModel.load(root / "exp" / model, device="cpu")
    wrapper, kind = exportable(speaker_model)
    meta = read_onnx_metadata(onnx_file)
    assert meta["input"] == kind == ("fbank" if model == "resnet34" else "mfcc")
    session = onnxruntime.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    wavs = wav_paths(root)
    stage5 = load_embeddings(root / "exp" / model / "embeddings" / "test", recipe_dir=root)
    for utt in ("awb-01", "slt-02", "kal16-03"):
        frames = frames_from_audio(wavs[utt], meta)
        for length in (len(frames), 120, 37):   # several lengths through the one dynamic graph
            x = frames[None, :length]
            ours = session.run(None, {"frames": x})
            with torch.no_grad():
                theirs = [t.numpy() for t in wrapper(torch.from_numpy(x))]
            for a, b in zip(ours, theirs):
                np.testing.assert_allclose(a, b, atol=1e-4, rtol=1e-4)
        # The full-utterance vector is stage 5's, the GMMs folded into the graph.
        np.testing.assert_allclose(session.run(["embedding"], {"frames": frames[None]})[0][0], stage5[utt][0],
                                   atol=1e-3, rtol=1e-3)
    # The cosine of two `normalized` outputs is the full-utterance term of the recipe's score.
    a, b = (session.run(["normalized"], {"frames": frames_from_audio(wavs[u], meta)[None]})[0][0]
            for u in ("awb-01", "awb-02"))
    assert np.linalg.norm(a) == pytest.approx(1, abs=1e-5) and -1 <= float(a @ b) <= 1


def test_torchscript_export_and_bad_requests(api_recipe, tmp_path, monkeypatch):
    root = api_recipe
    monkeypatch.chdir(root)   # the recipe's tables name its archives relative to it
    ts_file = tmp_path / "gmm_resnext.pt"
    cli(root, "export", "--model", "exp/gmm_resnext", "--format", "torchscript", "--out", str(ts_file))
    files = {"metadata.json": ""}
    loaded = torch.jit.load(str(ts_file), _extra_files=files)
    meta = json.loads(files["metadata.json"])
    source = FeatureSource(root / "data/test", ["mfcc"])
    frames = torch.from_numpy(source.read("rms-01")[0][None])
    speaker_model = SpeakerModel.load(root / "exp/gmm_resnext", device="cpu")
    from pipeline.export import exportable
    wrapper, _ = exportable(speaker_model)
    with torch.no_grad():
        for length in (frames.shape[1], 90):
            np.testing.assert_allclose(loaded(frames[:, :length])[0].numpy(), wrapper(frames[:, :length])[0].numpy(),
                                       atol=1e-4, rtol=1e-4)
    assert meta["model_name"] == "gmm_resnext"
    assert "GMM-UBM" in cli(root, "export", "--model", "exp/gmm_ubm", "--out", str(tmp_path / "u.onnx"),
                            ok=False).stderr
    assert "not a trained experiment" in cli(root, "export", "--model", "exp/nothing", "--out",
                                             str(tmp_path / "n.onnx"), ok=False).stderr
    assert not (tmp_path / "u.onnx").exists()


def test_embed_reads_arrays_by_one_rule(api_recipe):
    from pipeline.utils.audio import AudioError

    model = SpeakerModel.load(api_recipe / "exp/gmm_resnext", device="cpu")
    wav = wav_paths(api_recipe)["awb-01"]
    pcm16, rate = soundfile.read(wav, dtype="int16")
    mono = model.embed((pcm16, rate))
    np.testing.assert_allclose(model.embed(wav), mono, atol=1e-6)
    for same in (np.stack([pcm16, pcm16], axis=1), np.stack([pcm16, pcm16]), pcm16.astype(np.int32) * 65536,
                 pcm16 / 32768.0):
        np.testing.assert_allclose(model.embed((same, rate)), mono, atol=1e-6)
    with pytest.raises(AudioError, match=r"beyond \[-1, 1\]"):
        model.embed((pcm16.astype(np.float64), rate))
    with pytest.raises(AudioError, match="positive whole number of Hz, got 0"):
        model.embed((pcm16, 0))


def test_paths_given_to_the_api_and_cli_are_files_never_commands(api_recipe, tmp_path):
    from pipeline.utils.audio import AudioError

    root = api_recipe
    wavs = wav_paths(root)
    model = SpeakerModel.load(root / "exp/gmm_resnext", device="cpu")
    marker = tmp_path / "pwned"
    command = f"touch {marker}; cat {wavs['awb-01']} |"
    with pytest.raises(AudioError, match="never run as a command"):
        model.embed(command)
    proc = cli(root, "verify", "--model", "exp/gmm_resnext", wavs["awb-02"], command, ok=False)
    assert "never run as a command" in proc.stderr and len(proc.stderr.strip().split("\n")) == 1
    pairs = tmp_path / "pairs.txt"   # a field without spaces: `touch${IFS}x|` would be a shell command line
    pairs.write_text(f"{wavs['awb-02']} touch${{IFS}}{marker}|\n{wavs['awb-02']} {wavs['awb-01']}\n")
    proc = cli(root, "score-pairs", "--model", "exp/gmm_resnext", str(pairs))
    assert "1 of 2 pairs scored (1 failed)" in proc.stderr and "never run as a command" in proc.stderr
    assert not marker.exists()
    # A wav.scp entry of a data dir the user prepared may be a pipe, as in stage 1.
    np.testing.assert_allclose(model.embed_wav_scp_entry(f"cat {wavs['awb-01']} |"), model.embed(wavs["awb-01"]),
                               atol=1e-6)


def test_export_into_a_directory_that_cannot_take_the_file_is_one_line(api_recipe, tmp_path, monkeypatch):
    import errno

    from pipeline.export import ExportError, export_model
    from pipeline.utils import atomic

    root = api_recipe
    not_a_dir = tmp_path / "plain_file"
    not_a_dir.write_text("")
    proc = cli(root, "export", "--model", "exp/gmm_resnext", "--out", str(not_a_dir / "m.onnx"), ok=False)
    assert proc.stderr.strip().split("\n") == [f"Error: cannot write {not_a_dir}/m.onnx into {not_a_dir}: it is not "
                                               f"a directory; give an output path in a directory you can write"]
    # A read-only directory: root's writes pass chmod, so the file system's answer on the .tmp file is simulated.
    read_only = tmp_path / "read_only"
    read_only.mkdir()

    def open_on_a_read_only_directory(path, *args, **kwargs):
        if Path(path).parent == read_only:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        return open(path, *args, **kwargs)
    monkeypatch.setattr(atomic, "open", open_on_a_read_only_directory, raising=False)
    model = SpeakerModel.load(root / "exp/gmm_resnext", device="cpu")
    for fmt in ("onnx", "torchscript"):
        with pytest.raises(ExportError, match=f"into {read_only}: Read-only file system; give an output path"):
            export_model(model, read_only / f"m.{fmt}", fmt)
    assert not list(read_only.iterdir())


def test_stage6_names_a_utt2spk_relabelled_after_the_trials_were_made(api_recipe, tmp_path, monkeypatch):
    import logging

    from pipeline.errors import PipelineError
    from pipeline.stages.score import ModelScoring, score_model_set

    data_root = tmp_path / "data"
    for name in ("train", "test"):
        shutil.copytree(api_recipe / "data" / name, data_root / name)
    utt2spk = DataDir.load(data_root / "test").utt2spk
    utt2spk["awb-03"] = "kal16"   # a target trial awb-01 awb-03 now spans two speakers
    write_table(data_root / "test/utt2spk", utt2spk)
    before = {p.name: p.read_bytes() for p in (api_recipe / "exp/gmm_resnext/scores").iterdir()}
    monkeypatch.chdir(api_recipe)   # stage 6 runs in the recipe directory, whose archives its tables name
    with pytest.raises(PipelineError, match=f"{data_root}/test/trials_O:[0-9]+: 'awb-0[12] awb-03 target' disagrees "
                                            f"with {data_root}/test/utt2spk .*remake the trials"):
        score_model_set(ModelScoring(api_recipe / "exp/gmm_resnext", data_root, "test", "train", 10), 20,
                        logging.getLogger("t"))
    assert {p.name: p.read_bytes() for p in (api_recipe / "exp/gmm_resnext/scores").iterdir()} == before
