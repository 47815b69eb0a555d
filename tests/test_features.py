"""Stages 1-3 on tiny real inputs: MFCC, VAD, GMMs, LGP, archives, reruns, crashes and bad audio."""
from __future__ import annotations

import struct
from dataclasses import replace
from pathlib import Path

import kaldiio
import numpy as np
import pytest
import python_speech_features as psf
import soundfile

from pipeline.stages.fit_gmm import fit_gmms
from pipeline.stages.make_lgp import make_lgp
from pipeline.stages.make_mfcc import make_mfcc
from pipeline.features.gmm import DiagGMM, fit_gmm
from pipeline.dataset.features import FeatureSource
from pipeline.features.lgp import LGPExtractor, lgp_statistics
from pipeline.features.mfcc import FeatureError, MfccOptions, energy_vad, mfcc_and_vad, normalize_frames
from pipeline.utils.archive import ArchiveError, ArchiveWriter, load, read_scp, write_archive
from pipeline.utils.audio import (AudioError, checked_samples, read_audio_file, read_wav_scp_entry,
                                  samples_from_array)
from pipeline.utils.datadir import DataDir, DataDirError, write_table
from sklearn_gmm import weighted_log_prob
from synthetic_corpus import SAMPLE_RATE as RATE, make_corpus, synthesize_utterance

OPTS = MfccOptions()
GMM_CFG = {"models": ["gi", "male", "female"], "num_components": 4, "max_frames": 5000, "max_iter": 20}


def read_kaldi_binary_matrix(path: Path, offset: int) -> np.ndarray:
    """An independent reader of Kaldi's uncompressed binary float matrix ('\\0B' 'FM ')."""
    with open(path, "rb") as f:
        f.seek(offset)
        assert f.read(2) == b"\0B"
        token = f.read(3)
        assert token == b"FM ", token
        (size1,), rows = struct.unpack("<b", f.read(1)), struct.unpack("<i", f.read(4))[0]
        (size2,), cols = struct.unpack("<b", f.read(1)), struct.unpack("<i", f.read(4))[0]
        assert size1 == size2 == 4
        return np.frombuffer(f.read(4 * rows * cols), dtype="<f4").reshape(rows, cols)


@pytest.fixture(scope="module")
def recipe(tmp_path_factory):
    """Stages 1-3 once on a small synthetic data dir."""
    root = tmp_path_factory.mktemp("recipe")
    data = make_corpus(root, "train", 4, 3)
    make_mfcc(data, root / "mfcc", root / "exp/make_mfcc", OPTS, nj=2)
    fit_gmms(data, root / "exp/gmm", {"gmm": GMM_CFG})
    out = root / "data/train_lgp_gi"
    make_lgp(data, root / "exp/gmm/gi", root / "lgp/gi", out, root / "exp/make_lgp", nj=2)
    return root, data, out


def test_mfcc_equals_python_speech_features_with_its_lifter():
    samples = synthesize_utterance(np.random.default_rng(0), 120, 1.0, 0.9, 1.0).astype(np.float64)
    ours = mfcc_and_vad(samples, replace(OPTS, ceplifter=22))[0]
    direct = psf.mfcc(samples, samplerate=16000, winlen=0.025, winstep=0.01, numcep=80, nfilt=80, nfft=512,
                      preemph=0.97, ceplifter=22, appendEnergy=True, winfunc=np.hamming)
    np.testing.assert_allclose(ours, direct.astype(np.float32), rtol=1e-5, atol=1e-4)
    assert ours.shape == (1 + int(np.ceil((len(samples) - 400) / 160)), 80)  # psf framing: pad the last frame


def reference_log_mel(samples: np.ndarray, rate: int = 16000, nfilt: int = 80, nfft: int = 512) -> np.ndarray:
    """Log mel filterbank energies written out from the textbook steps, independently of python_speech_features:
    pre-emphasis, 25 ms Hamming frames every 10 ms (last frame zero-padded), power spectrum, triangular HTK-mel
    filters on FFT bins, natural log."""
    x = np.append(samples[0], samples[1:] - 0.97 * samples[:-1])
    win, hop = 400, 160
    n = 1 + int(np.ceil((len(x) - win) / hop))
    x = np.concatenate([x, np.zeros((n - 1) * hop + win - len(x))])
    frames = np.stack([x[i * hop:i * hop + win] for i in range(n)]) * np.hamming(win)
    power = np.abs(np.fft.rfft(frames, nfft)) ** 2 / nfft
    mel = np.linspace(0, 2595 * np.log10(1 + rate / 2 / 700), nfilt + 2)
    bins = np.floor((nfft + 1) * 700 * (10 ** (mel / 2595) - 1) / rate).astype(int)
    filters = np.zeros((nfilt, nfft // 2 + 1))
    for m in range(nfilt):
        left, centre, right = bins[m], bins[m + 1], bins[m + 2]
        filters[m, left:centre] = (np.arange(left, centre) - left) / (centre - left)
        filters[m, centre:right] = (right - np.arange(centre, right)) / (right - centre)
    energies = power @ filters.T
    return np.log(np.where(energies == 0, np.finfo(float).eps, energies))


def test_default_mfcc_is_the_unliftered_dct_of_the_log_mel_filterbank():
    """The authors' front end has no cepstral lifter: c_k is the orthonormal DCT-II of the log mel energies (c0 the
    frame log energy), so no coefficient is sign-flipped or rescaled."""
    samples = synthesize_utterance(np.random.default_rng(3), 150, 1.2, 0.9, 1.0).astype(np.float64)
    mfcc, vad = mfcc_and_vad(samples, OPTS)
    log_mel = reference_log_mel(samples)
    k, j = np.arange(80)[:, None], np.arange(80)[None, :]
    dct = np.sqrt(2 / 80) * np.cos(np.pi * k * (2 * j + 1) / 160)
    dct[0] /= np.sqrt(2)
    expected = log_mel @ dct.T
    np.testing.assert_allclose(mfcc[:, 1:], expected[:, 1:], rtol=1e-4, atol=2e-3)
    assert OPTS.ceplifter == 0


def test_fbank_input_is_the_log_mel_filterbank_on_the_mfcc_frames(tmp_path):
    data = make_corpus(tmp_path, "train", 2, 2)
    opts = replace(OPTS, fbank=True)
    make_mfcc(data, tmp_path / "mfcc", tmp_path / "log", opts, nj=2)
    fbank_dir = data.with_name("train_fbank")
    assert (fbank_dir / "vad.scp").read_bytes() == (data / "vad.scp").read_bytes()
    assert (fbank_dir / "utt2spk").read_bytes() == (data / "utt2spk").read_bytes()
    utt = DataDir.load(data).utts[0]
    samples, _ = read_wav_scp_entry(DataDir.load(data).table("wav.scp")[utt], 16000)
    stored = load(read_scp(fbank_dir / "feats.scp")[utt])
    np.testing.assert_allclose(stored, reference_log_mel(samples), rtol=1e-5, atol=1e-4)
    assert stored.shape[0] == load(read_scp(data / "feats.scp")[utt]).shape[0]
    source = FeatureSource(data, ["fbank", "mfcc"])
    fbank, mfcc = source.read(utt)
    assert fbank.shape == (mfcc.shape[0], 80)
    np.testing.assert_allclose(fbank.mean(0), 0, atol=1e-3)   # voiced frames, mean removed, as `mfcc`
    # A config without filterbanks removes them, so that no model reads filterbanks of another config.
    make_mfcc(data, tmp_path / "mfcc", tmp_path / "log", OPTS, nj=2)
    assert not fbank_dir.exists()
    with pytest.raises(DataDirError, match="features.fbank: true"):
        FeatureSource(data, ["fbank"])


def test_vad_finds_speech_between_silences():
    log_energy = np.concatenate([np.full(50, 2.0), np.full(100, 20.0), np.full(50, 2.0)])
    vad = energy_vad(log_energy, OPTS)
    assert vad[:48].sum() == 0 and vad[52:148].all() and vad[152:].sum() == 0


def test_normalize_frames_keeps_voiced_and_removes_mean():
    feats = np.arange(20, dtype=np.float32).reshape(10, 2)
    vad = np.array([0, 1] * 5, dtype=np.float32)
    out = normalize_frames(feats, vad)
    assert out.shape == (5, 2)
    np.testing.assert_allclose(out.mean(0), 0, atol=1e-6)


def test_archives_readable_by_kaldiio_and_independent_reader(recipe):
    root, data, _ = recipe
    scp = read_scp(data / "feats.scp")
    key, spec = next(iter(scp.items()))
    path, offset = spec.rsplit(":", 1)
    ours = read_kaldi_binary_matrix(Path(path), int(offset))
    np.testing.assert_array_equal(ours, kaldiio.load_mat(spec))
    assert dict(kaldiio.load_ark(path))[key].shape == ours.shape
    assert (data / "utt2num_frames").read_text().split("\n")[0] == f"{key} {ours.shape[0]}"


def test_compressed_archive_round_trip(tmp_path):
    mat = np.random.default_rng(0).standard_normal((300, 80)).astype(np.float32)
    scp = write_archive(tmp_path / "c", [("u1", mat)], compress=True)
    assert (tmp_path / "c.ark").stat().st_size < mat.nbytes / 3
    np.testing.assert_allclose(load(read_scp(scp)["u1"]), mat, atol=0.05)


def test_crash_inside_writer_publishes_nothing(tmp_path):
    with pytest.raises(RuntimeError):
        with ArchiveWriter(tmp_path / "x.1") as writer:
            writer.write("a", np.zeros((3, 2)))
            raise RuntimeError("killed")
    assert not list(tmp_path.iterdir())
    with pytest.raises(ArchiveError, match="NaN"):
        with ArchiveWriter(tmp_path / "y") as writer:
            writer.write("a", np.array([[np.nan]]))
    assert not (tmp_path / "y.scp").exists()


def test_gmm_fit_and_kaldi_text_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    frames = np.concatenate([rng.normal(-2, 1, (500, 3)), rng.normal(3, 0.5, (500, 3))])
    gmm, info = fit_gmm(frames, 2, seed=0)
    assert info["converged"]
    np.testing.assert_allclose(sorted(gmm.means[:, 0]), [-2, 3], atol=0.2)
    gmm.write_kaldi_text(tmp_path / "final.dubm.txt")
    back = DiagGMM.read_kaldi_text(tmp_path / "final.dubm.txt")
    for name in ("weights", "means", "variances"):
        np.testing.assert_allclose(getattr(back, name), getattr(gmm, name), rtol=1e-6)
    text = (tmp_path / "final.dubm.txt").read_text()
    assert text.startswith("<DiagGMM>") and "<GCONSTS>" in text and "<MEANS_INVVARS>" in text


def test_chunked_em_is_scikit_learns_em():
    """Stage 2's EM runs scikit-learn's E-step over chunks of frames (memory at paper scale); the fit is the one
    scikit-learn's own GaussianMixture gives, iteration for iteration."""
    from sklearn.mixture import GaussianMixture

    from pipeline.features.gmm import chunked_gaussian_mixture

    rng = np.random.default_rng(0)
    frames = np.concatenate([rng.normal(m, 1 + 0.3 * i, (700, 5)) for i, m in enumerate(rng.normal(0, 4, (6, 5)))])
    settings = dict(max_iter=25, tol=1e-4, reg_covar=1e-6, init_params="k-means++", random_state=3)
    plain = GaussianMixture(6, covariance_type="diag", **settings).fit(frames)
    chunked = chunked_gaussian_mixture(6, chunk_frames=999, **settings).fit(frames)
    assert chunked.n_iter_ == plain.n_iter_ and chunked.converged_ == plain.converged_
    assert chunked.lower_bound_ == pytest.approx(plain.lower_bound_, abs=1e-10)
    for name in ("weights_", "means_", "covariances_"):
        np.testing.assert_allclose(getattr(chunked, name), getattr(plain, name), rtol=1e-9, atol=1e-12)


def test_fit_gmm_without_floor_is_plain_scikit_learn():
    """`fit_gmm(init="kmeans", reg_covar=1e-3, var_floor=0)` is scikit-learn's GaussianMixture with its default
    k-means initialisation and that reg_covar (the "textbook" UBM of bench/gmm_ubm_levers.py)."""
    from sklearn.mixture import GaussianMixture

    rng = np.random.default_rng(2)
    frames = np.concatenate([rng.normal(m, 0.02 + i, (400, 3)) for i, m in enumerate(rng.normal(0, 4, (4, 3)))])
    plain = GaussianMixture(4, covariance_type="diag", reg_covar=1e-3, max_iter=30, random_state=0).fit(frames)
    gmm, info = fit_gmm(frames, 4, max_iter=30, var_floor=0.0, seed=0, init="kmeans", reg_covar=1e-3)
    assert info["iterations"] == plain.n_iter_ and info["floored_variances"] == 0
    assert gmm.variances.min() >= 1e-3
    for name, value in (("weights", plain.weights_), ("means", plain.means_), ("variances", plain.covariances_)):
        np.testing.assert_allclose(getattr(gmm, name), value, rtol=1e-9, atol=1e-12)


def test_lgp_matches_sklearn(recipe):
    root, data, lgp_dir = recipe
    gmm = DiagGMM.load_npz(root / "exp/gmm/gi/gmm.npz")
    utt, spec = next(iter(read_scp(data / "feats.scp").items()))
    frames = normalize_frames(load(spec), load(read_scp(data / "vad.scp")[utt]))
    expected = (weighted_log_prob(gmm.to_sklearn(), frames) - gmm.lgp_mean) / gmm.lgp_std
    np.testing.assert_allclose(LGPExtractor(gmm)(frames), expected, atol=1e-4, rtol=1e-5)
    # and the stage-3 archive holds exactly that
    np.testing.assert_allclose(load(read_scp(lgp_dir / "feats.scp")[utt]), expected, atol=1e-4, rtol=1e-5)


def test_lgp_statistics_normalise_training_frames():
    rng = np.random.default_rng(1)
    frames = rng.standard_normal((2000, 5)).astype(np.float32)
    gmm, _ = fit_gmm(frames, 3, seed=0)
    gmm.lgp_mean, gmm.lgp_std = lgp_statistics(gmm, frames)
    y = LGPExtractor(gmm)(frames)
    np.testing.assert_allclose(y.mean(0), 0, atol=1e-3)
    np.testing.assert_allclose(y.std(0), 1, atol=1e-3)
    batched = LGPExtractor(gmm).batch([frames[:7], frames[7:20]])
    np.testing.assert_allclose(np.concatenate(batched), y[:20], atol=1e-5)


def test_gender_gmms_and_outputs(recipe):
    root, data, lgp_dir = recipe
    for name in ("gi", "male", "female"):
        gmm = DiagGMM.load_npz(root / "exp/gmm" / name / "gmm.npz")
        assert gmm.num_components == 4 and gmm.dim == 80 and gmm.lgp_std is not None
    assert DataDir.load(lgp_dir).utts == DataDir.load(data).utts


def test_stage_rerun_is_a_noop(recipe):
    root, data, lgp_dir = recipe
    before = {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}
    make_mfcc(data, root / "mfcc", root / "exp/make_mfcc", OPTS, nj=2)
    fit_gmms(data, root / "exp/gmm", {"gmm": GMM_CFG})
    make_lgp(data, root / "exp/gmm/gi", root / "lgp/gi", lgp_dir, root / "exp/make_lgp", nj=2)
    after = {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file() and not p.name.endswith(".log")}
    assert {p: before[p] for p in after} == after


def test_killed_job_leaves_nothing_trusted(tmp_path, monkeypatch):
    data = make_corpus(tmp_path, "train", 2, 2)
    calls = {"n": 0}
    import pipeline.stages.make_mfcc as stage

    real = stage.features_and_vad

    def dies_on_third(samples, opts):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt("killed")
        return real(samples, opts)

    monkeypatch.setattr(stage, "features_and_vad", dies_on_third)
    with pytest.raises(KeyboardInterrupt):
        make_mfcc(data, tmp_path / "mfcc", tmp_path / "log", OPTS, nj=1)
    assert not (data / "feats.scp").exists()
    assert not list((tmp_path / "mfcc").glob("*.scp")) and not list((tmp_path / "mfcc").glob("*.ark"))
    monkeypatch.setattr(stage, "features_and_vad", real)
    make_mfcc(data, tmp_path / "mfcc", tmp_path / "log", OPTS, nj=1)
    assert len(read_scp(data / "feats.scp")) == 4


@pytest.mark.parametrize("samples,rate,message", [(np.zeros(0), RATE, "'<samples>' is empty"),
                                                  (np.array([0.1, np.inf]), RATE, "1 NaN or infinite samples"),
                                                  (np.full(800, 0.1), 8000, "8000 Hz, expected 16000")])
def test_samples_in_memory_get_the_checks_of_a_file(samples, rate, message):
    with pytest.raises(AudioError, match=message):
        checked_samples(samples, rate, "<samples>", RATE)


def test_checked_samples_resample_and_scale_as_a_file_read():
    samples, rate = checked_samples(np.full(800, 0.5), 8000, "<samples>", RATE, resample=True)
    assert rate == RATE and len(samples) == 1600 and abs(samples[400:1200].mean() - 0.5 * 32768) < 1


@pytest.mark.parametrize("case,reason", [("missing", None), ("corrupt", "cannot read audio"), ("empty", "is empty"),
                                         ("rate", "8000 Hz, expected 16000"), ("short", "shorter than one"),
                                         ("silent", "voiced frames"), ("nan", "NaN or infinite samples")])
def test_bad_audio_is_listed_as_unusable_and_picked_up_once_fixed(tmp_path, case, reason):
    data = make_corpus(tmp_path, "train", 2, 2)
    wav = DataDir.load(data).table("wav.scp")
    bad_utt = DataDir.load(data).utts[-1]
    path = Path(wav[bad_utt])
    good = path.read_bytes()
    if case == "missing":
        wav[bad_utt] = str(tmp_path / "nowhere.wav")
        write_table(data / "wav.scp", wav)
    elif case == "corrupt":
        path.write_bytes(b"RIFF\x00\x00garbage")
    elif case == "empty":
        soundfile.write(path, np.zeros(0, dtype=np.float32), RATE)
    elif case == "rate":
        soundfile.write(path, np.zeros(8000, dtype=np.float32) + 0.1, 8000)
    elif case == "short":
        soundfile.write(path, np.full(200, 0.1, dtype=np.float32), RATE)
    elif case == "silent":
        soundfile.write(path, np.zeros(RATE, dtype=np.float32), RATE)
    elif case == "nan":
        samples = np.full(RATE, 0.1, dtype=np.float32)
        samples[100] = np.nan
        soundfile.write(path, samples, RATE, subtype="FLOAT")
    log_dir = tmp_path / "log"
    if case == "missing":  # validation catches it before any job runs
        with pytest.raises(DataDirError, match=f"audio of '{bad_utt}' not found"):
            make_mfcc(data, tmp_path / "mfcc", log_dir, OPTS, nj=2)
        return
    tables_before = {n: (data / n).read_bytes() for n in ("wav.scp", "utt2spk", "spk2utt")}
    make_mfcc(data, tmp_path / "mfcc", log_dir, OPTS, nj=2)
    result = DataDir.load(data)
    # The user's tables are untouched; the utterance is listed with what is wrong, and has no features.
    assert {n: (data / n).read_bytes() for n in tables_before} == tables_before
    assert list(result.unusable) == [bad_utt] and reason in result.unusable[bad_utt]
    assert str(path) in result.unusable[bad_utt]
    assert bad_utt not in read_scp(data / "feats.scp") and len(result.usable_utts) == 3
    logged = "".join(p.read_text() for p in log_dir.glob("*.log"))
    assert bad_utt in logged and str(path) in logged
    # Once the file is fixed (same path, same wav.scp), a rerun picks it up.
    path.write_bytes(good)
    make_mfcc(data, tmp_path / "mfcc", log_dir, OPTS, nj=2)
    result = DataDir.load(data)
    assert not result.unusable and not (data / "unusable_utts").exists()
    assert bad_utt in read_scp(data / "feats.scp") and len(result.usable_utts) == 4


def test_audio_reader_errors_and_pipes(tmp_path):
    path = tmp_path / "a.wav"
    soundfile.write(path, np.full(1600, 0.5, dtype=np.float32), 8000)
    with pytest.raises(AudioError, match="8000 Hz, expected 16000"):
        read_audio_file(path, 16000)
    samples, rate = read_audio_file(path, 16000, resample=True)
    assert rate == 16000 and abs(len(samples) - 3200) <= 1
    piped, _ = read_wav_scp_entry(f"cat {path} |")
    assert np.allclose(piped, read_audio_file(path)[0])
    assert np.allclose(read_wav_scp_entry(str(path))[0], piped)
    with pytest.raises(AudioError, match="failed"):
        read_wav_scp_entry("false |")
    with pytest.raises(FeatureError, match="shorter than one"):
        mfcc_and_vad(np.ones(100), OPTS)
    with pytest.raises(FeatureError, match="voiced frames"):
        mfcc_and_vad(np.zeros(16000), replace(OPTS, min_voiced_frames=20))


def test_a_path_ending_in_a_pipe_is_opened_as_a_file_never_run(tmp_path):
    wav = tmp_path / "a.wav"
    soundfile.write(wav, np.full(1600, 0.5, dtype=np.float32), RATE)
    marker = tmp_path / "pwned"
    command = f"touch {marker}; cat {wav} |"
    with pytest.raises(AudioError, match="never run as a command"):
        read_audio_file(command)
    assert not marker.exists()
    odd = tmp_path / "odd name |"   # a file may be called that: it is read as the file it is
    odd.write_bytes(wav.read_bytes())
    assert np.array_equal(read_audio_file(odd)[0], read_audio_file(wav)[0])
    # The same line in a wav.scp is the user's own command, run as Kaldi runs it.
    assert np.array_equal(read_wav_scp_entry(command)[0], read_audio_file(wav)[0]) and marker.exists()


def test_stage1_reads_pipe_entries_of_wav_scp_as_their_files(tmp_path):
    plain = make_corpus(tmp_path / "plain", "train", 1, 2)
    piped = make_corpus(tmp_path / "piped", "train", 1, 2)
    wav = DataDir.load(piped).table("wav.scp")
    write_table(piped / "wav.scp", {u: f"cat {p} |" for u, p in wav.items()})
    for data in (plain, piped):
        make_mfcc(data, data.parent / "mfcc", data.parent / "log", OPTS, nj=1)
    assert not DataDir.load(piped).unusable
    feats = [kaldiio.load_scp(str(d / "feats.scp")) for d in (plain, piped)]
    assert list(feats[0]) == list(feats[1]) and all(np.array_equal(feats[0][u], feats[1][u]) for u in feats[0])


def test_samples_from_array_downmixes_and_scales_by_one_rule():
    mono = np.sin(np.arange(4000) / 7.0) * 0.5
    pcm16 = np.round(mono * 32767).astype(np.int16)
    expected, rate = samples_from_array(pcm16, 16000)
    assert rate == 16000 and np.array_equal(expected, pcm16 / 32768.0)
    for stereo in (np.stack([pcm16, pcm16], axis=1), np.stack([pcm16, pcm16])):   # (N, 2) and (2, N)
        assert np.array_equal(samples_from_array(stereo, 16000)[0], expected)
    assert np.array_equal(samples_from_array(pcm16.astype(np.int32) * 65536, 16000.0)[0], expected)
    assert np.array_equal(samples_from_array(np.array([0, 128, 255], dtype=np.uint8), 8000)[0],
                          [-1.0, 0.0, 127 / 128])
    assert np.array_equal(samples_from_array(mono.astype(np.float32), 16000)[0], mono.astype(np.float32))


@pytest.mark.parametrize("samples,rate,message", [
    (np.full(100, 1.5), 16000, r"reach 1\.5, beyond \[-1, 1\]; scale them"),
    (np.full((100, 2), -3.0), 16000, "beyond"),
    (np.zeros(100, dtype=np.int64), 16000, "type int64 are refused"),
    (np.zeros(100, dtype=bool), 16000, "type bool are refused"),
    (np.zeros((100, 9)), 16000, "cannot tell channels"),
    (np.zeros((4, 4)), 16000, "cannot tell channels"),
    (np.zeros((2, 2, 100)), 16000, "shape"),
    (np.zeros((0, 2)), 16000, "is empty"),
    (np.zeros(100), 0, "positive whole number of Hz, got 0"),
    (np.zeros(100), -16000, "positive whole number"),
    (np.zeros(100), 16000.5, "positive whole number"),
    (np.zeros(100), "16000", "positive whole number"),
])
def test_samples_from_array_refuses_what_it_cannot_read(samples, rate, message):
    with pytest.raises(AudioError, match=message):
        samples_from_array(samples, rate)
