"""Augmentation (pipeline/augment, `augment-data-dir`): an augmented copy of a tiny synthetic training set keeps its
speakers and genders, has the SNR it records (measured on the written audio), is the same for a seed whatever --nj,
uses RIRS_NOISES and MUSAN trees laid out as distributed, and is not redone on a rerun."""
from __future__ import annotations

import shutil
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile
import yaml
from click.testing import CliRunner
from scipy.signal import fftconvolve

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from synthetic_corpus import SAMPLE_RATE as RATE, make_corpus, synthesize_utterance  # noqa: E402

from pipeline.augment import (CODECS, AugmentConfigError, Augmenter, AugmentOptions, SourceError,  # noqa: E402
                              babble_pool_from, band_limit, codec_problem, codec_round_trip, coloured_noise,
                              find_musan, foreground_track, mix_at_snr)
from pipeline.cli import cli  # noqa: E402
from pipeline.stages.augment import augment_data_dir, augment_job, read_conditions  # noqa: E402
from pipeline.utils.audio import read_audio_file, read_wav_scp_entry  # noqa: E402
from pipeline.utils.config import load_config  # noqa: E402
from pipeline.utils.datadir import DataDir  # noqa: E402

# The demo's offline path: simulated rooms, coloured noise, babble from the other training speakers.
SIMULATED = AugmentOptions(enabled=True, types={"reverb": 1.0, "noise": 1.0, "babble": 1.0}, babble_speakers=(2, 3))


def measured_snr(speech: np.ndarray, mixture: np.ndarray) -> float:
    return float(10 * np.log10(np.sum(speech ** 2) / np.sum((mixture - speech) ** 2)))


def audio_bytes(data_dir: Path) -> dict[str, bytes]:
    return {utt: Path(p).read_bytes() for utt, p in DataDir.load(data_dir).table("wav.scp").items()}


def augment(root: Path, src: Path, opts: AugmentOptions, nj: int = 2, name: str = "run") -> tuple[Path, bool]:
    out = root / name
    done = augment_data_dir(src, out / "train_aug", out / "audio", out / "train_combined", opts, nj=nj,
                            log_dir=out / "log")
    return out, done


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    return make_corpus(tmp_path_factory.mktemp("aug_src"), "train", 4, 3)


@pytest.fixture(scope="module")
def simulated(tmp_path_factory, source) -> Path:
    out, done = augment(tmp_path_factory.mktemp("aug"), source, SIMULATED, nj=2)
    assert done
    return out


# ------------------------------------------------------------------------------------------------------------------
# The data dirs
# ------------------------------------------------------------------------------------------------------------------
def test_copy_keeps_speakers_and_genders_with_speaker_prefixed_ids(source, simulated):
    src, aug = DataDir.load(source), DataDir.load(simulated / "train_aug")
    aug.validate(simulated / "train_aug")
    assert aug.spk_tables["spk2gender"] == src.spk_tables["spk2gender"]
    rows = {r["utt"]: r for r in read_conditions(simulated / "audio" / "conditions.tsv")}
    assert sorted(rows) == aug.utts and sorted(r["source"] for r in rows.values()) == src.utts  # one copy each
    for utt, spk in aug.utt2spk.items():
        source_utt = rows[utt]["source"]
        assert utt == f"{source_utt}-{rows[utt]['type']}" and utt.startswith(spk)
        assert spk == src.utt2spk[source_utt]
        info = soundfile.info(aug.table("wav.scp")[utt])
        assert (info.samplerate, info.subtype) == (RATE, "PCM_16")
        assert float(aug.table("utt2dur")[utt]) == pytest.approx(info.frames / RATE, abs=1e-4)
        assert info.frames == soundfile.info(src.table("wav.scp")[source_utt]).frames
    assert {r["type"] for r in rows.values()} == {"reverb", "noise", "babble"}
    combined = DataDir.load(simulated / "train_combined")
    combined.validate(simulated / "train_combined")
    assert combined.utts == sorted(src.utts + aug.utts, key=str.encode)
    assert combined.spk_tables["spk2gender"] == src.spk_tables["spk2gender"]


def test_written_noise_has_the_recorded_snr(source, simulated):
    src = DataDir.load(source)
    rows = read_conditions(simulated / "audio" / "conditions.tsv")
    additive = [r for r in rows if r["type"] in ("noise", "babble")]
    assert additive
    for row in additive:
        clean = read_wav_scp_entry(src.table("wav.scp")[row["source"]])[0]
        mixture = read_audio_file(row["wav"])[0] / float(row["gain"])
        lo, hi = SIMULATED.snr_db[row["type"]]
        assert lo <= float(row["snr_db"]) <= hi
        assert measured_snr(clean, mixture) == pytest.approx(float(row["snr_db"]), abs=0.01), row["utt"]
    for row in rows:
        if row["type"] == "babble":  # never the speaker's own voice
            assert all(not s.startswith(row["spk"]) for s in row["sources"].split(","))


def test_same_seed_same_bytes_whatever_nj_and_another_seed_differs(tmp_path, source, simulated):
    again, _ = augment(tmp_path, source, SIMULATED, nj=1, name="nj1")
    assert audio_bytes(again / "train_aug").keys() == audio_bytes(simulated / "train_aug").keys()
    assert list(audio_bytes(again / "train_aug").values()) == list(audio_bytes(simulated / "train_aug").values())
    for table in ("utt2spk", "spk2utt", "spk2gender", "utt2dur"):
        assert (again / "train_aug" / table).read_bytes() == (simulated / "train_aug" / table).read_bytes()
    other, _ = augment(tmp_path, source, replace(SIMULATED, seed=1), nj=2, name="seed1")
    assert list(audio_bytes(other / "train_aug").values()) != list(audio_bytes(simulated / "train_aug").values())


def test_rerun_is_a_no_op(source, simulated):
    wav_scp = simulated / "train_aug" / "wav.scp"
    first_wav = Path(wav_scp.read_text().split()[1])
    before = (wav_scp.stat().st_mtime_ns, first_wav.stat().st_mtime_ns,
              (simulated / "train_combined" / "wav.scp").stat().st_mtime_ns)
    _, done = augment(simulated.parent, source, SIMULATED, nj=2)
    assert not done
    assert (wav_scp.stat().st_mtime_ns, first_wav.stat().st_mtime_ns,
            (simulated / "train_combined" / "wav.scp").stat().st_mtime_ns) == before


def test_audio_dir_of_other_files_is_refused(tmp_path, source):
    (tmp_path / "corpus").mkdir()
    (tmp_path / "corpus" / "precious.wav").write_bytes(b"RIFF")
    with pytest.raises(AugmentConfigError, match="did not write"):
        augment_data_dir(source, tmp_path / "aug", tmp_path / "corpus", None, SIMULATED, log_dir=tmp_path / "log")
    assert (tmp_path / "corpus" / "precious.wav").is_file()


def test_the_union_cannot_replace_its_source(tmp_path, source):
    with pytest.raises(AugmentConfigError, match="four different directories"):
        augment_data_dir(source, tmp_path / "aug", tmp_path / "audio", source, SIMULATED, log_dir=tmp_path / "log")


def test_changed_options_redo_the_copy_and_drop_stale_audio(tmp_path, source):
    out, _ = augment(tmp_path, source, replace(SIMULATED, types={"noise": 1.0}), nj=1)
    assert all(u.endswith("-noise") for u in DataDir.load(out / "train_aug").utts)
    out, done = augment(tmp_path, source, replace(SIMULATED, types={"babble": 1.0}), nj=1)
    assert done and all(u.endswith("-babble") for u in DataDir.load(out / "train_aug").utts)
    assert not list((out / "audio").rglob("*-noise.wav"))


# ------------------------------------------------------------------------------------------------------------------
# RIRS_NOISES and MUSAN, as distributed
# ------------------------------------------------------------------------------------------------------------------
ECHO_DELAY, ECHO_GAIN = 400, 0.5


def _write(path: Path, audio: np.ndarray, rate: int = RATE) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(path, audio, rate, subtype="PCM_16")


@pytest.fixture(scope="module")
def corpora(tmp_path_factory) -> tuple[Path, Path]:
    """RIRS_NOISES with two simulated room sets (an impulse and one echo: a convolution we can check) and a largeroom
    set that Kaldi's recipe does not use; MUSAN with noise, music (one with vocals) and speech, one file at 8 kHz."""
    root = tmp_path_factory.mktemp("corpora")
    rng = np.random.default_rng(5)
    rir = np.zeros(ECHO_DELAY + 10)
    rir[3], rir[3 + ECHO_DELAY] = 0.8, 0.8 * ECHO_GAIN  # the direct path 3 samples in
    rirs = root / "RIRS_NOISES" / "simulated_rirs"
    for room_set in ("smallroom", "mediumroom"):
        for room in (1, 2):
            _write(rirs / room_set / f"Room{room:03d}" / f"Room{room:03d}-00001.wav", rir)
    _write(rirs / "largeroom" / "Room001" / "Room001-00001.wav", np.r_[0.1, np.zeros(50), 0.9])
    musan = root / "musan"
    _write(musan / "noise" / "free-sound" / "noise-free-sound-0000.wav", 0.1 * rng.standard_normal(RATE // 2))
    _write(musan / "noise" / "sound-bible" / "noise-sound-bible-0000.wav", 0.1 * rng.standard_normal(RATE // 4), 8000)
    for i in range(2):
        t = np.arange(12 * RATE) / RATE
        _write(musan / "music" / "fma" / f"music-fma-{i:04d}.wav", 0.2 * np.sin(2 * np.pi * (220 + 110 * i) * t))
    (musan / "music" / "fma" / "ANNOTATIONS").write_text("music-fma-0000 pop N artist\nmusic-fma-0001 pop Y singer\n")
    for i in range(4):
        _write(musan / "speech" / "librivox" / f"speech-librivox-{i:04d}.wav", 0.1 * rng.standard_normal(5 * RATE))
    return root / "RIRS_NOISES", musan


def test_rirs_noises_and_musan_are_used_when_given(tmp_path, source, corpora):
    rirs, musan = corpora
    opts = AugmentOptions(enabled=True, copies=4, rirs_noises=str(rirs), musan=str(musan))
    out, _ = augment(tmp_path, source, opts, nj=2)
    rows = read_conditions(out / "audio" / "conditions.tsv")
    src = DataDir.load(source)
    assert sorted(r["type"] for r in rows) == sorted(["reverb", "noise", "music", "babble"] * len(src.utts))
    for row in rows:
        clean = read_wav_scp_entry(src.table("wav.scp")[row["source"]])[0]
        written = read_audio_file(row["wav"])[0] / float(row["gain"])
        if row["type"] == "reverb":
            assert row["rir"].split("/")[0] in ("smallroom", "mediumroom")
            wet = np.convolve(clean, np.r_[1.0, np.zeros(ECHO_DELAY - 1), ECHO_GAIN])[:len(clean)]
            wet *= np.sqrt(np.mean(clean ** 2) / np.mean(wet ** 2))
            assert np.max(np.abs(written - wet)) < 2.0, "not the convolution with the RIR file, power-matched"
            continue
        assert measured_snr(clean, written) == pytest.approx(float(row["snr_db"]), abs=0.01)
        assert all(s.startswith({"noise": "noise-", "music": "music-", "babble": "speech-"}[row["type"]])
                   for s in row["sources"].split(","))
        if row["type"] == "music":
            assert row["sources"] == "music-fma-0000.wav", "music with vocals is left out"
        if row["type"] == "babble":
            assert 3 <= len(row["sources"].split(",")) <= 7


def test_musan_noise_is_clips_with_gaps():
    clip = np.ones(100)
    track = foreground_track([clip, 2 * clip, clip], 450, interval=50)
    assert np.all(track[100:150] == 0) and np.all(track[250:300] == 0) and np.all(track[300:400] != 0)
    assert np.mean(track ** 2) == pytest.approx(1.0)
    assert np.std(track[150:250]) == pytest.approx(0.0)  # every clip at the same level


def test_missing_or_misplaced_corpora_are_named(tmp_path, corpora):
    with pytest.raises(SourceError, match="simulated_rirs"):
        Augmenter(replace(SIMULATED, rirs_noises=str(tmp_path)))
    _write(tmp_path / "musan" / "noise" / "free-sound" / "noise-free-sound-0000.wav", np.zeros(100))
    with pytest.raises(SourceError, match=r"musan/music: no wav files"):
        find_musan(tmp_path / "musan")
    assert len(find_musan(corpora[1], use_vocals=True)["music"]) == 2


# ------------------------------------------------------------------------------------------------------------------
# Options, on-the-fly use and the command
# ------------------------------------------------------------------------------------------------------------------
def test_options_are_checked():
    with pytest.raises(AugmentConfigError, match="augment.types"):
        AugmentOptions.from_config({"types": {"reverb": 1, "thunder": 1}})
    with pytest.raises(AugmentConfigError, match="snr_db.noise"):
        AugmentOptions.from_config({"snr_db": {"noise": [15, 0]}})
    with pytest.raises(AugmentConfigError, match="unknown augment option"):
        AugmentOptions.from_config({"musan_dir": "/x"})
    with pytest.raises(AugmentConfigError, match="copies=3"):  # without MUSAN: reverb and noise only, no pool
        Augmenter(AugmentOptions(copies=3))
    assert Augmenter(AugmentOptions()).unavailable.keys() == {"music", "babble"}


@pytest.mark.parametrize("config", ["demo.yaml", "voxceleb.yaml"])
def test_shipped_configs_parse(config):
    cfg = load_config(REPO / "conf" / config)
    opts = AugmentOptions.from_config(cfg["augment"], default_seed=cfg.get("seed", 0))
    assert opts.enabled and opts.snr_db == {"noise": (0, 15), "music": (5, 15), "babble": (13, 20)}
    assert opts.babble_speakers == (3, 7)
    assert opts.types.get("codec", 0) == (1 if config == "demo.yaml" else 0)


def test_on_the_fly_is_a_function_of_the_seed(source):
    data = DataDir.load(source)
    pool = babble_pool_from(data.utt2spk, data.table("wav.scp"), 100, seed=0)
    augmenter = Augmenter(SIMULATED, babble_pool=pool)
    wave = read_wav_scp_entry(data.table("wav.scp")[data.utts[0]])[0]
    outputs = [augmenter(wave, seed=[0, epoch, 7], speaker=data.spks[0]) for epoch in range(6)]
    assert all(len(o) == len(wave) for o in outputs)
    assert np.array_equal(outputs[0], augmenter(wave, seed=[0, 0, 7], speaker=data.spks[0]))
    assert len({o.tobytes() for o in outputs}) == 6


@pytest.mark.parametrize("snr_db", [0.0, 7.5, 20.0])
def test_mix_at_snr_gives_the_asked_snr(snr_db):
    rng = np.random.default_rng(1)
    speech = np.sin(np.arange(32000) * 0.05) * np.linspace(0, 1, 32000)
    assert measured_snr(speech, mix_at_snr(speech, coloured_noise(32000, 1.0, rng), snr_db)) == pytest.approx(snr_db)


def test_command_does_nothing_when_disabled(tmp_path, source):
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"augment": {"enabled": False}}))
    log_dir = ["--log-dir", str(tmp_path / "log")]
    result = CliRunner().invoke(cli, ["augment-data-dir", "--config", str(config), *log_dir, str(source), str(tmp_path / "aug"),
                                       str(tmp_path / "audio")])
    assert result.exit_code == 0, result.output
    assert not (tmp_path / "aug").exists()
    result = CliRunner().invoke(cli, ["augment-data-dir", "--config", str(config), *log_dir, "-o", "augment.enabled=true", "-o",
                                       "augment.musan=" + str(tmp_path), str(source), str(tmp_path / "aug"),
                                       str(tmp_path / "audio")])
    assert result.exit_code != 0 and "no wav files" in result.output


# ------------------------------------------------------------------------------------------------------------------
# Codecs (sox round trips) and band limits
# ------------------------------------------------------------------------------------------------------------------
CODEC_ONLY = AugmentOptions(enabled=True, types={"codec": 1.0})


def tones_and_noise(seconds: float = 2.0) -> np.ndarray:
    """Three tones under 2.4 kHz and white noise over the whole band, at 16-bit scale (as the data loader reads)."""
    t = np.arange(int(seconds * RATE)) / RATE
    tones = sum(np.sin(2 * np.pi * f * t + p) for f, p in ((440, 0.0), (1130, 1.0), (2370, 2.0)))
    return 6000 * tones + 1000 * np.random.default_rng(0).standard_normal(len(t))


def best_lag(x: np.ndarray, y: np.ndarray, span: int = 100) -> int:
    """How many samples y lags x, by the peak of their cross-correlation within +-span."""
    correlation = fftconvolve(y, x[::-1])[len(x) - 1 - span:len(x) + span]  # lags -span..span
    return int(np.argmax(correlation)) - span


def power_above(x: np.ndarray, hz: float) -> float:
    return float(np.sum(np.abs(np.fft.rfft(x)[np.fft.rfftfreq(len(x), 1 / RATE) > hz]) ** 2))


def needs_codec(name: str) -> None:
    problem = codec_problem(name, RATE)
    if problem:
        pytest.skip(f"this sox cannot make {name}: {problem}")


@pytest.mark.parametrize("name", list(CODECS))
def test_codec_copy_is_changed_aligned_and_of_the_input_length_and_scale(name):
    needs_codec(name)
    codec = CODECS[name]
    tones = tones_and_noise()
    speech = synthesize_utterance(np.random.default_rng(3), 130.0, 1.0, 0.9, 2.0).astype(np.float64)
    for setting in (codec.settings[0], codec.settings[-1]):
        out = codec_round_trip(tones, RATE, codec, setting)
        assert out.shape == tones.shape and out.dtype == np.float64
        assert np.std(out) == pytest.approx(np.std(tones), rel=0.3), "not the input's scale"
        assert np.max(np.abs(out - tones)) > 0.05 * np.std(tones), "the codec changed nothing"
        # Speech, not tones, for the delay: a parametric codec (AMR-NB) keeps the envelope, not the phase of a tone.
        coded = codec_round_trip(speech, RATE, codec, setting)
        assert coded.shape == speech.shape
        assert abs(best_lag(speech, coded)) <= (3 if name == "amr-nb" else 0), "the codec's delay is not removed"
        assert np.corrcoef(speech, coded)[0, 1] > (0.5 if name == "amr-nb" else 0.95)
        if codec.rate == 8000:
            assert power_above(out, 4200) < 10 ** (-25 / 10) * power_above(tones, 4200), "not band-limited to 4 kHz"
        if codec.rate == 8000 and name != "amr-nb":  # waveform codecs: the input under 4 kHz, plus coding noise
            assert np.corrcoef(band_limit(tones, 3800, RATE), out)[0, 1] > (0.95 if "law" in name else 0.8)


def test_band_limit_cuts_above_the_cutoff_without_delay():
    tones = tones_and_noise()
    out = band_limit(tones, 3000.0, RATE)
    assert power_above(out, 3600) < 1e-3 * power_above(tones, 3600)
    assert best_lag(tones, out) == 0 and np.corrcoef(tones, out)[0, 1] > 0.98


def test_codec_copies_draw_codec_and_band_per_utterance_from_the_seed():
    augmenter = Augmenter(replace(CODEC_ONLY, codec_lowpass_hz=(3000.0, 3000.0), codec_full_band=0.3))
    speech = tones_and_noise(1.0) / 32768
    copies = {utt: augmenter.augment_utterance(utt, speech)[0] for utt in (f"utt{i}" for i in range(12))}
    again = augmenter.augment_utterance("utt0", speech)[0]
    assert again[2] == copies["utt0"][2] and np.array_equal(again[1], copies["utt0"][1])
    conds = [cond for _, _, cond in copies.values()]
    assert {c["type"] for c in conds} == {"codec"}
    assert len({c["codec"].split(":")[0] for c in conds}) >= 3, "the same codec for every utterance"
    assert {c["band_hz"] for c in conds} >= {3000.0, 4000.0}  # cut at 3 kHz; an 8 kHz codec's own band
    for kind, audio, cond in copies.values():
        assert len(audio) == len(speech)
        if cond["band_hz"] == 3000.0:
            assert power_above(audio, 3600) < 1e-2 * power_above(speech, 3600)
        if cond["codec"].startswith("vorbis") and cond["band_hz"] == RATE / 2:
            assert power_above(audio, 4200) > 0.3 * power_above(speech, 4200), "a full-band copy lost its top"
    other_seed = Augmenter(replace(CODEC_ONLY, seed=1)).augment_utterance("utt0", speech)[0]
    assert not np.array_equal(other_seed[1], copies["utt0"][1])


def test_codec_copies_in_the_data_dir(tmp_path, source):
    out, _ = augment(tmp_path, source, replace(CODEC_ONLY, codecs=("mu-law", "gsm")), nj=1)
    src = DataDir.load(source)
    rows = read_conditions(out / "audio" / "conditions.tsv")
    assert len(rows) == len(src.utts) and {r["type"] for r in rows} == {"codec"}
    assert {r["codec"] for r in rows} == {"mu-law", "gsm"} and all(float(r["band_hz"]) <= 4000 for r in rows)
    for row in rows:
        clean = read_wav_scp_entry(src.table("wav.scp")[row["source"]])[0]
        written = read_audio_file(row["wav"])[0] / float(row["gain"])
        assert len(written) == len(clean) and np.corrcoef(clean, written)[0, 1] > 0.9


def test_codec_options_are_checked_and_in_the_fingerprint():
    for section, key in [({"codecs": ["gsm", "mp3"]}, "augment.codecs: unknown codec.*'mp3'.*MP3 is not offered"),
                         ({"codecs": "gsm"}, "augment.codecs must be a list"),
                         ({"types": {"codec": 1}, "codecs": []}, "augment.codecs is empty"),
                         ({"codec_lowpass_hz": [7600, 3400]}, "augment.codec_lowpass_hz"),
                         ({"codec_lowpass_hz": [0, 3400]}, "augment.codec_lowpass_hz"),
                         ({"codec_full_band": 1.5}, "augment.codec_full_band"),
                         ({"codec_full_band": "often"}, "augment.codec_full_band")]:
        with pytest.raises(AugmentConfigError, match=key):
            AugmentOptions.from_config(section)
    opts = AugmentOptions.from_config({"types": {"codec": 1}, "codecs": ["gsm"], "codec_lowpass_hz": [3000, 5000]})
    assert (opts.codecs, opts.codec_lowpass_hz) == (("gsm",), (3000.0, 5000.0))
    assert opts.fingerprint_fields() != replace(opts, codec_full_band=0.5).fingerprint_fields()
    assert opts.fingerprint_fields() != replace(opts, codecs=("gsm", "a-law")).fingerprint_fields()
    # Without codec copies the codec options change nothing, and the fingerprint stays what it was before them.
    assert "codecs" not in AugmentOptions().fingerprint_fields()


@pytest.fixture
def sox_without_amr(tmp_path, monkeypatch):
    """A sox on PATH that, like builds without opencore-amr, refuses AMR-NB."""
    fake = tmp_path / "bin" / "sox"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\ncase \"$*\" in *amr-nb*) echo \"sox FAIL formats: can't open output file \\`-': "
                    "SoX was compiled without AMR-NB encoding support.\" >&2; exit 2;; esac\n"
                    f"exec {shutil.which('sox')} \"$@\"\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(fake.parent))
    codec_problem.cache_clear()
    yield
    codec_problem.cache_clear()


def test_a_codec_this_sox_lacks_is_reported_and_left_out(sox_without_amr, tmp_path):
    augmenter = Augmenter(replace(CODEC_ONLY, codecs=("amr-nb", "gsm")))
    assert augmenter.codecs == ["gsm"]
    assert list(augmenter.unavailable) == ["codec amr-nb"]
    assert "without AMR-NB encoding support" in augmenter.unavailable["codec amr-nb"]
    assert "\n" not in augmenter.unavailable["codec amr-nb"]
    speech = tones_and_noise(0.5)
    assert {augmenter.apply("codec", speech, np.random.default_rng(i))[1]["codec"] for i in range(5)} == {"gsm"}
    with pytest.raises(AugmentConfigError, match="only 0 type"):
        Augmenter(replace(CODEC_ONLY, codecs=("amr-nb",)))
    mixed = Augmenter(replace(CODEC_ONLY, types={"noise": 1.0, "codec": 1.0}, codecs=("amr-nb",)))
    assert mixed.kinds == ["noise"] and "none of augment.codecs" in mixed.unavailable["codec"]
    # A job on a node whose sox lacks a codec that the planning node had would draw other copies: refused.
    with pytest.raises(AugmentConfigError, match=r"this node's sox makes codecs \['gsm'\]"):
        augment_job(1, {}, replace(CODEC_ONLY, codecs=("amr-nb", "gsm")), [], str(tmp_path / "audio"),
                    str(tmp_path / "log"), RATE, False, "key")


def test_no_sox_no_codec_copies(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    codec_problem.cache_clear()
    try:
        augmenter = Augmenter(replace(CODEC_ONLY, types={"reverb": 1.0, "codec": 1.0}))
    finally:
        codec_problem.cache_clear()
    assert augmenter.kinds == ["reverb"] and "sox, which is not installed" in augmenter.unavailable["codec gsm"]
