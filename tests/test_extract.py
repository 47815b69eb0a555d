"""Stage 5 on the tiny recipe: Kaldi-readable embeddings of full utterances and evenly spaced crops, the same values
from `load_embedder` and from parallel jobs, a no-op rerun, and self-contained experiment dirs."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import kaldiio
import numpy as np
import pytest

from pipeline.embed import load_embedder
from pipeline.stages.extract import extract_embeddings
from pipeline.dataset.crops import evenly_spaced_crops
from pipeline.dataset.features import FeatureSource, inputs_from_mfcc
from pipeline.experiment import load_gmm
from pipeline.features.lgp import LGPExtractor
from pipeline.utils.archive import load, read_scp
from pipeline.utils.stage import StageError

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def test_embeddings(trained_gmm_resnext: Path, tiny_recipe) -> Path:
    out_dir = trained_gmm_resnext / "embeddings" / "test"
    extract_embeddings(trained_gmm_resnext, tiny_recipe.data("test"), out_dir)
    return out_dir


def test_one_vector_and_one_crop_matrix_per_utterance_readable_by_kaldiio(test_embeddings, tiny_recipe):
    utts = FeatureSource(tiny_recipe.data("test"), ["lgp_gi"]).utts
    full = kaldiio.load_scp(str(test_embeddings / "xvector.scp"))
    crops = kaldiio.load_scp(str(test_embeddings / "xvector_crops.scp"))
    assert list(full.keys()) == utts and list(crops.keys()) == utts
    for utt in utts:
        assert full[utt].shape == (32,) and full[utt].dtype == np.float32 and np.isfinite(full[utt]).all()
        assert crops[utt].shape == (3, 32) and np.isfinite(crops[utt]).all()
    assert not list(test_embeddings.glob("*.tmp"))


def test_rerun_through_the_cli_is_a_no_op(test_embeddings, trained_gmm_resnext, tiny_recipe):
    before = {p.name: p.stat().st_mtime_ns for p in test_embeddings.glob("xvector*")}
    done = subprocess.run([sys.executable, "-m", "pipeline", "extract", "--exp-dir", str(trained_gmm_resnext),
                           "--data-dir", str(tiny_recipe.data("test")), "--out-dir", str(test_embeddings)],
                          env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "nothing to do" in done.stderr
    assert {p.name: p.stat().st_mtime_ns for p in test_embeddings.glob("xvector*")} == before


def test_load_embedder_gives_the_archived_vectors(test_embeddings, trained_gmm_resnext, tiny_recipe):
    embedder = load_embedder(trained_gmm_resnext)
    source = FeatureSource(tiny_recipe.data("test"), embedder.input_names)
    full = kaldiio.load_scp(str(test_embeddings / "xvector.scp"))
    crops = kaldiio.load_scp(str(test_embeddings / "xvector_crops.scp"))
    for utt in source.utts[:3]:
        vector, matrix = embedder(source.read(utt))
        np.testing.assert_allclose(vector, full[utt], rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(matrix, crops[utt], rtol=1e-5, atol=1e-5)


def test_parallel_jobs_give_the_same_embeddings(test_embeddings, trained_gmm_resnext, tiny_recipe, tmp_path):
    extract_embeddings(trained_gmm_resnext, tiny_recipe.data("test"), tmp_path / "nj2", nj=2)
    assert sorted(p.name for p in (tmp_path / "nj2").glob("xvector*.ark")) == [
        "xvector.1.ark", "xvector.2.ark", "xvector_crops.1.ark", "xvector_crops.2.ark"]
    for name in ("xvector.scp", "xvector_crops.scp"):
        one, two = kaldiio.load_scp(str(test_embeddings / name)), kaldiio.load_scp(str(tmp_path / "nj2" / name))
        assert list(one.keys()) == list(two.keys())
        for utt in one:
            np.testing.assert_allclose(one[utt], two[utt], rtol=1e-5, atol=1e-5)


def test_without_crops_only_full_utterance_vectors_are_written(test_embeddings, trained_gmm_resnext, tiny_recipe,
                                                               tmp_path):
    extract_embeddings(trained_gmm_resnext, tiny_recipe.data("test"), tmp_path / "full", with_crops=False)
    assert sorted(p.name for p in (tmp_path / "full").glob("xvector*")) == ["xvector.ark", "xvector.scp"]
    full, reference = (kaldiio.load_scp(str(d / "xvector.scp")) for d in (tmp_path / "full", test_embeddings))
    for utt in reference:
        np.testing.assert_allclose(full[utt], reference[utt], rtol=1e-5, atol=1e-5)


def test_an_experiment_with_a_gmm_layer_does_not_need_the_gmm_file(tiny_recipe, trained_gmm_layer):
    gmms = tiny_recipe.root / "exp" / "gmm"
    os.rename(gmms, gmms.with_name("gmm.away"))
    try:
        embedder = load_embedder(trained_gmm_layer)
    finally:
        os.rename(gmms.with_name("gmm.away"), gmms)
    assert embedder.input_names == ["mfcc"]
    source = FeatureSource(tiny_recipe.data("test"), ["mfcc"])
    full, crops = embedder(source.read(source.utts[0]))
    assert full.shape == (32,) and crops.shape == (3, 32)


def test_a_model_that_was_never_trained_is_a_clear_error(tiny_recipe, tmp_path, trained_gmm_resnext):
    exp_dir = tmp_path / "untrained"
    shutil.copytree(trained_gmm_resnext, exp_dir, ignore=shutil.ignore_patterns("embeddings"))
    (exp_dir / "models" / "final.pt").unlink()
    with pytest.raises(StageError, match=r"final\.pt changed after stage 4 \(training\) wrote it: it is missing"):
        extract_embeddings(exp_dir, tiny_recipe.data("test"), tmp_path / "out")


def test_inputs_computed_from_mfcc_equal_the_archives(tiny_recipe):
    names = ["lgp_male", "lgp_female", "mfcc"]
    source = FeatureSource(tiny_recipe.data("test"), names)
    feats, vads = (read_scp(tiny_recipe.data("test") / t) for t in ("feats.scp", "vad.scp"))
    gmms = {gmm: LGPExtractor(load_gmm(tiny_recipe.root / "exp" / "gmm", gmm)) for gmm in ("male", "female")}
    for utt in source.utts[:3]:
        computed = inputs_from_mfcc(load(feats[utt]), load(vads[utt]), names, gmms)
        for mine, archived in zip(computed, source.read(utt)):
            # What `verify` computes is what stage 3 stored, up to float32 rounding (stage 3 batches utterances).
            np.testing.assert_allclose(mine, archived, rtol=1e-5, atol=1e-5)


def test_evenly_spaced_crops_cover_the_utterance_and_repeat_short_ones():
    frames = np.arange(100, dtype=np.float32)[:, None] * np.ones((1, 4), np.float32)
    crops = evenly_spaced_crops(frames, 30, 5)
    assert crops.shape == (5, 30, 4)
    assert crops[0, 0, 0] == 0 and crops[-1, -1, 0] == 99
    short = evenly_spaced_crops(frames[:7], 30, 3)
    assert short.shape == (3, 30, 4)
    np.testing.assert_array_equal(short[0, :14, 0], np.tile(np.arange(7), 2))
