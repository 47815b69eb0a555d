"""The embedded demo corpus (local/make_demo_corpus.py, local/demo/): who is in it, signal processing, splits, and a
tiny real build (8 synthesised people and 2 recorded ones from fake package trees) checked for determinism,
idempotence, atomicity, the band limit, the trials lists and the data-dir contract."""
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

from local.demo import degradation, dsp, tts_voices as tts
from local.demo.people import BABBLE_POOL, recorded_people, split_people, tts_people
from local.demo.recorded_speakers import read_recording_table
from pipeline.augment.noise import babble_noise, coloured_noise, mix_at_snr
from pipeline.utils.datadir import DataDir
from test_demo_recordings import voiced, write_ogg

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "local" / "make_demo_corpus.py"
TABLE = tts.read_voice_table()
RECORDED = read_recording_table()


# ------------------------------------------------------------------------------------------------------------------
# The voice table: people, not voices
# ------------------------------------------------------------------------------------------------------------------
def test_about_150_people_of_both_genders_each_in_one_row():
    ids = [s.id for s in TABLE] + [s.id for s in RECORDED]
    assert len(ids) == len(set(ids)), "a speaker id appears twice (or in both tables)"
    assert len(TABLE) >= 120 and len(RECORDED) >= 25
    genders = Counter(s.gender for s in TABLE + RECORDED)
    assert set(genders) == {"m", "f"} and min(genders.values()) >= 55, genders


def test_no_person_is_counted_twice():
    voices = [v for s in TABLE for v in s.voices]
    assert len(voices) == len(set(voices)), "a voice belongs to two speakers"
    row_of = {v: s.id for s in TABLE for v in s.voices}
    # The same person under two names must be one row (one speaker).
    for same_person in (("mbrola:en1", "festival:rab_diphone"), ("mbrola:it3", "festival:pc_diphone"),
                        ("mbrola:it4", "festival:lp_diphone"), ("flite:slt", "festival:cmu_us_slt_arctic_hts"),
                        ("flite:kal16", "festival:kal_diphone"), ("rhvoice:evgeniy-eng", "rhvoice:evgeniy-rus"),
                        ("rhvoice:aleksandr", "rhvoice:aleksandr-hq")):
        assert len({row_of[v] for v in same_person}) == 1, same_person
    # Copies of a voice that is already there, a database made from two people and a voice that may be another's
    # are not used at all: RHVoice alan is flite awb, RHVoice slt is flite slt, elena may be anna.
    for excluded in ("festival:en1_mbrola", "festival:us1_mbrola", "festival:us2_mbrola", "festival:us3_mbrola",
                     "flite:kal", "flite:awb_time", "mbrola:cn1", "rhvoice:alan", "rhvoice:slt", "rhvoice:elena"):
        assert excluded not in row_of, excluded
    assert row_of["rhvoice:evgeniy-eng"] == "rh-evgeniy" and next(
        s for s in TABLE if s.id == "rh-evgeniy").languages == ("en", "ru")


def test_main_only_voices_still_make_a_two_gender_corpus():
    main_only = {v for s in TABLE for v in s.voices if not v.startswith("mbrola:")}
    speakers = tts.available_speakers(TABLE, main_only)
    assert len(speakers) >= 15 and {s.gender for s in speakers} == {"m", "f"}


def test_people_without_an_installed_voice_are_named():
    no_rhvoice = {v for s in TABLE for v in s.voices if not v.startswith("rhvoice:")}
    absent = tts.unavailable_speakers(TABLE, no_rhvoice)
    assert absent == [s.id for s in TABLE if all(v.startswith("rhvoice:") for v in s.voices)]
    assert len(absent) == 29 and not set(absent) & {s.id for s in tts.available_speakers(TABLE, no_rhvoice)}


def test_every_language_has_enough_embedded_text():
    for language in {lang for s in TABLE for lang in (s.languages or (s.language,))}:
        lines = tts.read_texts(tts.DEFAULT_TEXT_DIR, language)
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
    for noise in (coloured_noise(32000, 1.0, rng), babble_noise(talkers, 32000, rng)):
        assert _measured_snr(speech, mix_at_snr(speech, noise, snr_db)) == pytest.approx(snr_db, abs=1e-6)
    with pytest.raises(ValueError):
        mix_at_snr(speech, np.ones(10), 5.0)


def test_coloured_noise_slope():
    rng = np.random.default_rng(0)
    power = np.abs(np.fft.rfft(coloured_noise(2 ** 16, 2.0, rng))) ** 2
    freqs = np.fft.rfftfreq(2 ** 16)
    low, high = power[(freqs > 0.01) & (freqs < 0.02)].mean(), power[(freqs > 0.2) & (freqs < 0.4)].mean()
    # Brown noise: power ~ 1/f^2, so a 20x higher band has ~400x less power.
    assert 100 < low / high < 2000


def test_durations_are_cut_and_padded_into_range():
    long = dsp.fit_duration(np.ones(16000 * 10), 0.1, 0.1, 2.0, 8.0)
    short = dsp.fit_duration(np.ones(8000), 0.1, 0.1, 2.0, 8.0)
    assert len(long) == 8 * 16000 and len(short) == 2 * 16000


def test_long_pauses_are_shortened():
    audio = np.zeros(48000)
    audio[:8000] = audio[24000:32000] = 0.5
    assert len(dsp.compress_pauses(audio, max_pause_s=0.25)) == 8000 + 4000 + 8000 + 4000


def test_one_long_synthesis_is_cut_at_its_pauses():
    """RHVoice speaks a speaker's utterances in one go: the cuts must land in the pauses nearest the expected
    boundaries, and the pieces must add up to the whole."""
    rate, pieces = 16000, [voiced(s, seed=k, edge_s=0.04) for k, s in enumerate((2.0, 3.5, 1.5))]
    audio = np.concatenate(pieces)
    expected = np.cumsum([len(p) for p in pieces])[:-1]
    cut = dsp.cut_at_pauses(audio, rate, expected / len(audio) + np.array([0.02, -0.03]))
    assert len(cut) == 3 and sum(len(c) for c in cut) == len(audio)
    assert np.all(np.abs(np.cumsum([len(c) for c in cut])[:-1] - expected) < 0.06 * rate)


# ------------------------------------------------------------------------------------------------------------------
# Who goes where
# ------------------------------------------------------------------------------------------------------------------
PEOPLE = tts_people(TABLE) + recorded_people(RECORDED)


def test_train_test_and_babble_are_disjoint_and_test_is_big_enough():
    train, test, babble = split_people(PEOPLE, 0.3, seed=0)
    ids = [p.id for p in train + test + babble]
    assert len(ids) == len(set(ids)) == len(PEOPLE)
    assert len(test) >= 40 and {p.gender for p in test} == {"m", "f"}
    assert {p.kind for p in test} == {p.kind for p in train} == {"tts", "recorded"}
    assert sum(p.kind == "recorded" for p in test) >= 6
    # Babble: people of both genders heard in neither split (never a trial's speaker inside its own noise).
    assert Counter(p.gender for p in babble) == Counter(BABBLE_POOL) and {p.kind for p in babble} == {"tts"}
    big_languages = [lang for lang, n in Counter(p.language for p in PEOPLE).items() if n >= 6]
    for lang in big_languages:  # every large language group has people on both sides
        assert any(p.language == lang for p in train) and any(p.language == lang for p in test), lang
    assert split_people(PEOPLE, 0.3, seed=0) == (train, test, babble)


def test_recorded_test_moves_recorded_people_of_both_genders_and_nobody_else():
    """demo.recorded_test: a real-speech list of more people; the synthesised split is untouched and train keeps
    recorded people."""
    train, test, babble = split_people(PEOPLE, 0.3, seed=0)
    train12, test12, babble12 = split_people(PEOPLE, 0.3, seed=0, recorded_test=12)
    recorded_test = [p for p in test12 if p.kind == "recorded"]
    assert len(recorded_test) == 12 and {p.gender for p in recorded_test} == {"m", "f"}
    assert babble12 == babble and set(test) <= set(test12)
    assert [p for p in test12 if p.kind == "tts"] == [p for p in test if p.kind == "tts"]
    assert sum(p.kind == "recorded" for p in train12) == len(RECORDED) - 12 > 0
    assert sorted(p.id for p in train12 + test12) == sorted(p.id for p in train + test)


def test_every_recording_is_low_passed_below_the_narrowest_source():
    rng = np.random.default_rng(0)
    rirs = degradation.rir_bank(seed=0, size=4)
    broadband = rng.standard_normal(16000 * 3) * 0.1
    for k in range(5):
        audio, cond = degradation.degrade_utterance(broadband, [], rirs, np.random.default_rng(k), "u")
        power = np.abs(np.fft.rfft(audio)) ** 2
        freqs = np.fft.rfftfreq(len(audio), 1 / 16000)
        above = power[freqs > degradation.LOWPASS_RANGE_HZ[1] + 500].mean() / power[freqs < 3000].mean()
        assert cond.lowpass_hz <= degradation.LOWPASS_RANGE_HZ[1] < 5500 and 10 * np.log10(above) < -30


# ------------------------------------------------------------------------------------------------------------------
# A tiny real build: 8 synthesised people (fast engines) and 2 recorded ones from a fake UQM package
# ------------------------------------------------------------------------------------------------------------------
INSTALLED = tts.installed_voices() if shutil.which("espeak-ng") else set()


def _tiny_speakers() -> list[str]:
    """Four synthesised speakers of each gender, fast engines first (Festival loads each voice for ~0.3 s)."""
    speakers = sorted(tts.available_speakers(TABLE, INSTALLED),
                      key=lambda s: (s.voices[0].split(":")[0] not in ("mbrola", "flite", "pico"), s.id))
    chosen = [s.id for g in "mf" for s in [s for s in speakers if s.gender == g][:4]]
    return chosen if len(chosen) == 8 else []


needs_voices = pytest.mark.skipif(
    not shutil.which("espeak-ng") or not _tiny_speakers(),
    reason="espeak-ng and 4 voices of each gender are needed: run local/install_demo_voices.sh as root")


def _fake_recordings(base: Path) -> tuple[Path, Path]:
    """A recording table of two actors in a fake, already unpacked uqm-voice: `rich` has plenty of speech, `poor`
    too little for 3 utterances; and the cache that fetch_packages would leave."""
    root = base / "cache" / "root" / "uqm-voice"
    voices = root / "usr/share/games/uqm/content/addons/uqm-0.8.0-voice/3dovoice"  # the zip, as fetch unpacks it
    for folder, clips in (("rich", 4), ("poor", 1)):
        for k in range(clips):
            write_ogg(voices / folder / f"{folder}-{k:03d}.ogg", 9.0 if folder == "rich" else 2.5, seed=k,
                      rate=11025)
    (root / ".extracted").write_text("uqm-voice_0.7.0-1_all.deb\n")
    table = base / "recordings.tsv"
    table.write_text("speaker\tgender\tlanguage\tpackages\tselect\tlicence\tnote\n"
                     "uqm-rich\tf\ten\tuqm-voice\tuqm folders=rich\tCC-BY-NC-SA-2.5\ta fake actor\n"
                     "uqm-poor\tm\ten\tuqm-voice\tuqm folders=poor\tCC-BY-NC-SA-2.5\ta fake actor\n")
    return table, base / "cache"


def _build(out_dir: Path, data_dir: Path, nj: int, seed: int = 0, wait: bool = True) -> subprocess.Popen:
    """The build as run.sh runs it, in its own process; fetch_packages is given the fake cache's trees instead of
    running apt-get (the only thing the fake replaces)."""
    table, cache = _fake_recordings(out_dir.parent / "fake")
    code = (f"import sys; sys.argv[0] = sys.argv.pop(1); sys.path.insert(0, {str(REPO)!r});"
            "from local.demo import debian_packages as r; from pathlib import Path;"
            "r.fetch_packages = lambda packages, cache, log: ({p: Path(cache) / 'root' / p for p in packages}, {});"
            "import runpy; runpy.run_path(sys.argv[0], run_name='__main__')")
    cmd = [sys.executable, "-c", code, str(SCRIPT), "--out-dir", str(out_dir), "--data-dir", str(data_dir),
           "--nj", str(nj), "--seed", str(seed), "--utts-per-spk", "3", "--test-utts-per-spk", "3",
           "--test-fraction", "0.5", "--speakers", ",".join(_tiny_speakers() + ["uqm-rich", "uqm-poor"]),
           "--recording-table", str(table), "--package-cache", str(cache)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    if wait:
        stdout, stderr = proc.communicate(timeout=180)
        assert proc.returncode == 0, stderr
        proc.log = stderr
    return proc


@pytest.fixture(scope="module")
def builds(tmp_path_factory, monkeypatch_module):
    root = tmp_path_factory.mktemp("demo")
    first = _build(root / "a" / "corpus", root / "a" / "data", nj=1)
    second = _build(root / "b" / "corpus", root / "b" / "data", nj=2)
    return root, first, second


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def _audio_bytes(data_dir: Path) -> dict[str, bytes]:
    wav_scp = DataDir.load(data_dir).table("wav.scp")
    return {utt: Path(path).read_bytes() for utt, path in wav_scp.items()}


def _people(root: Path) -> dict[str, dict[str, str]]:
    lines = (root / "a" / "corpus" / "speakers.tsv").read_text().splitlines()
    return {row[0]: dict(zip(lines[0].split("\t"), row)) for row in (line.split("\t") for line in lines[1:])}


@needs_voices
@pytest.mark.e2e   # builds demo corpora: not in tests/run.sh --fast
def test_same_seed_gives_the_same_corpus_whatever_nj(builds):
    root, _, _ = builds
    for name in ("train", "test"):
        a, b = root / "a" / "data" / name, root / "b" / "data" / name
        assert _audio_bytes(a) == _audio_bytes(b)
        for table in ["utt2spk", "spk2utt", "spk2gender", "utt2dur", "utt2lang"] + [
                p.name for p in a.glob("trials_*")]:
            assert (a / table).read_text() == (b / table).read_text(), table


@needs_voices
@pytest.mark.e2e   # builds demo corpora: not in tests/run.sh --fast
def test_a_person_with_too_little_speech_is_left_out_and_said(builds):
    root, first, _ = builds
    assert "uqm-poor" not in _people(root) and "too little speech, left out: uqm-poor" in first.log
    assert _people(root)["uqm-rich"]["kind"] == "recorded"


@needs_voices
@pytest.mark.e2e   # builds demo corpora: not in tests/run.sh --fast
def test_data_dirs_are_valid_disjoint_and_complete(builds):
    root, _, _ = builds
    train, test = (DataDir.load(root / "a" / "data" / n) for n in ("train", "test"))
    for name, data in (("train", train), ("test", test)):
        data.validate(root / "a" / "data" / name)
        assert all(len(utts) == 3 for utts in data.spk2utt.values())
    assert not set(train.spks) & set(test.spks)
    people = _people(root)
    babble = {s for s, row in people.items() if row["split"] == "babble"}
    assert not babble & (set(train.spks) | set(test.spks))
    assert sorted(train.spks + test.spks + sorted(babble)) == sorted(_tiny_speakers() + ["uqm-rich"])


@needs_voices
@pytest.mark.e2e   # builds demo corpora: not in tests/run.sh --fast
def test_audio_is_16k_mono_16bit_of_2_to_8_seconds_and_band_limited(builds):
    root, _, _ = builds
    for name in ("train", "test"):
        data = DataDir.load(root / "a" / "data" / name)
        for utt, path in data.table("wav.scp").items():
            info = soundfile.info(path)
            assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16"), utt
            assert 2.0 <= info.frames / 16000 <= 8.6 and float(data.table("utt2dur")[utt]) == pytest.approx(
                info.frames / 16000, abs=1e-4)
            samples, _ = soundfile.read(path)
            assert np.sqrt(np.mean(samples ** 2)) > 0.01, f"{utt} is (nearly) silent"
            power = np.abs(np.fft.rfft(samples)) ** 2
            freqs = np.fft.rfftfreq(len(samples), 1 / 16000)
            assert power[freqs > 6000].sum() < 1e-3 * power.sum(), f"{utt} has energy above the band limit"


@needs_voices
@pytest.mark.e2e   # builds demo corpora: not in tests/run.sh --fast
def test_conditions_are_in_range(builds):
    root, _, _ = builds
    rows = [line.split("\t") for line in (root / "a" / "corpus" / "conditions.tsv").read_text().splitlines()[1:]]
    in_splits = [s for s, row in _people(root).items() if row["split"] != "babble"]
    assert len(rows) == 3 * len(in_splits) and {r[0].rsplit("-", 1)[0] for r in rows} == set(in_splits)
    snrs = np.array([float(r[5]) for r in rows])
    assert np.all((snrs >= degradation.SNR_RANGE_DB[0]) & (snrs <= degradation.SNR_RANGE_DB[1]))


@needs_voices
@pytest.mark.e2e   # builds demo corpora: not in tests/run.sh --fast
def test_trials_are_all_pairs_all_same_gender_pairs_and_all_recorded_pairs(builds):
    root, _, _ = builds
    test = DataDir.load(root / "a" / "data" / "test")
    n = len(test.utts)
    assert len(test.trials["trials_O"]) == n * (n - 1) // 2
    gender = test.spk_tables["spk2gender"]
    same = [gender[test.utt2spk[a]] == gender[test.utt2spk[b]]
            for a, b in (line.split()[:2] for line in test.trials["trials_O"].lines())]
    assert len(test.trials["trials_H"]) == sum(same)
    recorded = {s for s, row in _people(root).items() if row["kind"] == "recorded"}
    if "trials_real" in test.trials:
        assert {test.utt2spk[u] for u in test.trials["trials_real"].enroll} <= recorded
    if "trials_synth" in test.trials:
        listed = test.trials["trials_synth"]
        synth = {test.utt2spk[u] for u in set(listed.enroll) | set(listed.test)}
        assert synth and not synth & recorded


@needs_voices
@pytest.mark.e2e   # builds demo corpora: not in tests/run.sh --fast
def test_second_run_does_nothing(builds):
    root, _, _ = builds
    wav_scp = root / "a" / "data" / "train" / "wav.scp"
    first_wav = Path(wav_scp.read_text().split()[1])
    before = (wav_scp.stat().st_mtime_ns, first_wav.stat().st_mtime_ns)
    started = time.time()
    again = _build(root / "a" / "corpus", root / "a" / "data", nj=1)
    assert "nothing to do" in again.log
    assert time.time() - started < 15
    assert (wav_scp.stat().st_mtime_ns, first_wav.stat().st_mtime_ns) == before


@needs_voices
@pytest.mark.e2e   # builds demo corpora: not in tests/run.sh --fast
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
