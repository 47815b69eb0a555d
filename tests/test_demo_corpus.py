"""The embedded demo corpus (local/make_demo_corpus.py): voice table, noise mixing, splits, trials, and a tiny real
build (8 speakers x 3 utterances through the real synthesisers) checked for determinism, idempotence, atomicity
and the data-dir contract."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "local" / "make_demo_corpus.py"
sys.path.insert(0, str(REPO / "local"))

import make_demo_corpus as mdc  # noqa: E402
from pipeline.utils.datadir import DataDir  # noqa: E402

TABLE = mdc.read_voice_table()


# ------------------------------------------------------------------------------------------------------------------
# The voice table: people, not voices
# ------------------------------------------------------------------------------------------------------------------
def test_voice_table_has_at_least_60_people_of_both_genders():
    ids = [s.id for s in TABLE]
    assert len(ids) == len(set(ids)), "a speaker id appears twice"
    assert len(TABLE) >= 60
    genders = Counter(s.gender for s in TABLE)
    assert set(genders) == {"m", "f"} and min(genders.values()) >= 20, genders


def test_no_person_is_counted_twice():
    voices = [v for s in TABLE for v in s.voices]
    assert len(voices) == len(set(voices)), "a voice belongs to two speakers"
    row_of = {v: s.id for s in TABLE for v in s.voices}
    # The same person under two names must be one row (one speaker).
    for same_person in (("mbrola:en1", "festival:rab_diphone"), ("mbrola:it3", "festival:pc_diphone"),
                        ("mbrola:it4", "festival:lp_diphone"), ("flite:slt", "festival:cmu_us_slt_arctic_hts"),
                        ("flite:kal16", "festival:kal_diphone")):
        assert len({row_of[v] for v in same_person}) == 1, same_person
    # Copies of a voice that is already there, and a database made from two people, are not used at all.
    for excluded in ("festival:en1_mbrola", "festival:us1_mbrola", "festival:us2_mbrola", "festival:us3_mbrola",
                     "flite:kal", "flite:awb_time", "mbrola:cn1"):
        assert excluded not in row_of, excluded


def test_main_only_voices_still_make_a_two_gender_corpus():
    main_only = {v for s in TABLE for v in s.voices if not v.startswith("mbrola:")}
    speakers = mdc.available_speakers(TABLE, main_only)
    assert len(speakers) >= 15 and {s.gender for s in speakers} == {"m", "f"}


def test_every_language_has_enough_embedded_text():
    for language in {s.language for s in TABLE}:
        lines = mdc.read_texts(mdc.DEFAULT_TEXT_DIR, language)
        assert len(lines) >= 15 and len(set(lines)) == len(lines), language


# ------------------------------------------------------------------------------------------------------------------
# Signal processing
# ------------------------------------------------------------------------------------------------------------------
def _measured_snr(speech: np.ndarray, mixture: np.ndarray) -> float:
    return float(10 * np.log10(np.sum(speech ** 2) / np.sum((mixture - speech) ** 2)))


@pytest.mark.parametrize("snr_db", [0.0, 7.5, 20.0])
def test_mix_at_snr_gives_the_asked_snr(snr_db):
    rng = np.random.default_rng(1)
    speech = np.sin(np.arange(32000) * 0.05) * np.linspace(0, 1, 32000)
    talkers = [rng.standard_normal(n) * rng.uniform(0.1, 3) for n in (9000, 40000, 12345)]
    for noise in (mdc.coloured_noise(32000, 1.0, rng), mdc.babble_noise(talkers, 32000, rng)):
        assert _measured_snr(speech, mdc.mix_at_snr(speech, noise, snr_db)) == pytest.approx(snr_db, abs=1e-6)
    with pytest.raises(ValueError):
        mdc.mix_at_snr(speech, np.ones(10), 5.0)


def test_coloured_noise_slope():
    rng = np.random.default_rng(0)
    power = np.abs(np.fft.rfft(mdc.coloured_noise(2 ** 16, 2.0, rng))) ** 2
    freqs = np.fft.rfftfreq(2 ** 16)
    low, high = power[(freqs > 0.01) & (freqs < 0.02)].mean(), power[(freqs > 0.2) & (freqs < 0.4)].mean()
    # Brown noise: power ~ 1/f^2, so a 20x higher band has ~400x less power.
    assert 100 < low / high < 2000


def test_durations_are_cut_and_padded_into_range():
    long = mdc.fit_duration(np.ones(16000 * 10), 0.1, 0.1, 2.0, 8.0)
    short = mdc.fit_duration(np.ones(8000), 0.1, 0.1, 2.0, 8.0)
    assert len(long) == 8 * 16000 and len(short) == 2 * 16000


def test_long_pauses_are_shortened():
    audio = np.zeros(48000)
    audio[:8000] = audio[24000:32000] = 0.5
    assert len(mdc.compress_pauses(audio, max_pause_s=0.25)) == 8000 + 4000 + 8000 + 4000


# ------------------------------------------------------------------------------------------------------------------
# Split and trials
# ------------------------------------------------------------------------------------------------------------------
def test_split_is_speaker_disjoint_with_both_genders_and_spread_languages():
    train, test = mdc.split_speakers(TABLE, 0.25, seed=0)
    assert not {s.id for s in train} & {s.id for s in test}
    assert len(train) + len(test) == len(TABLE)
    assert abs(len(test) - 0.25 * len(TABLE)) <= 1
    assert {s.gender for s in test} == {"m", "f"}
    big_languages = [lang for lang, n in Counter(s.language for s in TABLE).items() if n >= 6]
    for lang in big_languages:  # every large language group has speakers on both sides
        assert any(s.language == lang for s in train) and any(s.language == lang for s in test), lang
    assert mdc.split_speakers(TABLE, 0.25, seed=0) == (train, test)


# ------------------------------------------------------------------------------------------------------------------
# A tiny real build
# ------------------------------------------------------------------------------------------------------------------
INSTALLED = mdc.installed_voices() if shutil.which("espeak-ng") else set()


def _tiny_speakers() -> list[str]:
    """Four speakers of each gender, fast engines first (Festival loads each voice for ~0.3 s)."""
    speakers = sorted(mdc.available_speakers(TABLE, INSTALLED), key=lambda s: s.voices[0].startswith("festival:"))
    chosen = [s.id for g in "mf" for s in [s for s in speakers if s.gender == g][:4]]
    return chosen if len(chosen) == 8 else []


needs_voices = pytest.mark.skipif(
    not shutil.which("espeak-ng") or not _tiny_speakers(),
    reason="espeak-ng and 4 voices of each gender are needed: run local/install_demo_voices.sh as root")


def _build(out_dir: Path, data_dir: Path, nj: int, seed: int = 0, wait: bool = True) -> subprocess.Popen:
    cmd = [sys.executable, str(SCRIPT), "--out-dir", str(out_dir), "--data-dir", str(data_dir), "--nj", str(nj),
           "--seed", str(seed), "--utts-per-spk", "3", "--test-fraction", "0.5", "--num-trials", "30",
           "--target-fraction", "0.2", "--speakers", ",".join(_tiny_speakers())]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    if wait:
        stdout, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 0, stderr
        proc.log = stderr
    return proc


@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    first = _build(root / "a" / "corpus", root / "a" / "data", nj=1)
    second = _build(root / "b" / "corpus", root / "b" / "data", nj=2)
    return root, first, second


def _audio_bytes(data_dir: Path) -> dict[str, bytes]:
    wav_scp = DataDir.load(data_dir).table("wav.scp")
    return {utt: Path(path).read_bytes() for utt, path in wav_scp.items()}


@needs_voices
def test_same_seed_gives_the_same_corpus_whatever_nj(builds):
    root, _, _ = builds
    for name in ("train", "test"):
        a, b = root / "a" / "data" / name, root / "b" / "data" / name
        assert _audio_bytes(a) == _audio_bytes(b)
        for table in ("utt2spk", "spk2utt", "spk2gender", "utt2dur", "utt2lang") + (
                ("trials_O", "trials_H") if name == "test" else ()):
            assert (a / table).read_text() == (b / table).read_text(), table


@needs_voices
def test_data_dirs_are_valid_disjoint_and_complete(builds):
    root, _, _ = builds
    train, test = (DataDir.load(root / "a" / "data" / n) for n in ("train", "test"))
    for name, data in (("train", train), ("test", test)):
        data.validate(root / "a" / "data" / name)
        assert set(data.spk_tables["spk2gender"].values()) == {"m", "f"}
        assert all(len(utts) == 3 for utts in data.spk2utt.values())
    assert not set(train.spks) & set(test.spks)
    assert sorted(train.spks + test.spks) == sorted(_tiny_speakers())


@needs_voices
def test_audio_is_16k_mono_16bit_of_2_to_8_seconds(builds):
    root, _, _ = builds
    for name in ("train", "test"):
        data = DataDir.load(root / "a" / "data" / name)
        for utt, path in data.table("wav.scp").items():
            info = soundfile.info(path)
            assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16"), utt
            assert 2.0 <= info.frames / 16000 <= 8.0 and float(data.table("utt2dur")[utt]) == pytest.approx(
                info.frames / 16000, abs=1e-4)
            samples, _ = soundfile.read(path)
            assert np.sqrt(np.mean(samples ** 2)) > 0.01, f"{utt} is (nearly) silent"


@needs_voices
def test_recorded_conditions_are_in_range(builds):
    root, _, _ = builds
    rows = [line.split("\t") for line in (root / "a" / "corpus" / "conditions.tsv").read_text().splitlines()[1:]]
    assert len(rows) == 24
    snrs = np.array([float(r[7]) for r in rows])
    assert np.all((snrs >= 0) & (snrs <= 20))


@needs_voices
def test_trials_format_and_target_share(builds):
    root, _, _ = builds
    test = DataDir.load(root / "a" / "data" / "test")
    gender = test.spk_tables["spk2gender"]
    for name in ("trials_O", "trials_H"):
        labels = [line.split()[2] for line in test.trials[name].lines()]
        assert 0.15 <= labels.count("target") / len(labels) <= 0.3, name
    for line in test.trials["trials_H"].lines():
        a, b, label = line.split()
        if label == "nontarget":
            assert gender[test.utt2spk[a]] == gender[test.utt2spk[b]]


@needs_voices
def test_second_run_does_nothing(builds):
    root, _, _ = builds
    wav_scp = root / "a" / "data" / "train" / "wav.scp"
    first_wav = Path(wav_scp.read_text().split()[1])
    before = (wav_scp.stat().st_mtime_ns, first_wav.stat().st_mtime_ns)
    started = time.time()
    again = _build(root / "a" / "corpus", root / "a" / "data", nj=1)
    assert "nothing to do" in again.log
    assert time.time() - started < 10
    assert (wav_scp.stat().st_mtime_ns, first_wav.stat().st_mtime_ns) == before


@needs_voices
def test_an_interrupted_rebuild_leaves_no_data_dir_that_looks_complete(builds):
    root, _, _ = builds
    corpus, data = root / "b" / "corpus", root / "b" / "data"
    proc = _build(corpus, data, nj=1, seed=1, wait=False)  # other arguments: a rebuild
    deadline = time.time() + 60
    while not (corpus / ".staging" / "clean").exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (data / ".done.demo_corpus").exists()
    assert not (data / "train").exists() and not (data / "test").exists()
    # The next run starts over and completes.
    _build(corpus, data, nj=2, seed=1)
    assert (data / ".done.demo_corpus").exists()
    DataDir.load(data / "test").validate(data / "test")
