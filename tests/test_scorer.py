"""The one scorer interface: every implementation scores paired trials and tables alike, and each equals the scoring
it replaced (the authors' cosine with crops, PLDA's LLR, the GMM-UBM's both ways) or its definition."""
from __future__ import annotations

import numpy as np
import pytest

from pipeline.scoring import (PLDA, ASNorm, Calibrated, Calibration, CosineScorer, LinearScorer, PLDAScorer,
                              Symmetric, gather_rows, raw_and_normalised, score_trials, score_trials_with, scorer_for,
                              with_as_norm)
from pipeline.scoring.identification import IdentificationCalibration


def unit(x):
    return x / np.linalg.norm(x)


def recordings(rng, speakers=6, per_speaker=4, dim=8, crops=3, spread=0.6):
    """Embeddings (1 + crops, dim) around a centre per speaker; utterance ids prefixed by speaker."""
    centres = rng.normal(size=(speakers, dim))
    out, spk2utt = {}, {}
    for s in range(speakers):
        utts = [f"s{s}-{k}" for k in range(per_speaker)]
        spk2utt[f"s{s}"] = utts
        for u in utts:
            out[u] = centres[s] + rng.normal(0, spread, (1 + crops, dim))
    return out, spk2utt


@pytest.mark.parametrize("scorer", [CosineScorer(np.full(8, 0.1)), Symmetric(LinearScorer())])
def test_score_matrix_is_the_paired_score_of_every_pair(scorer):
    rng = np.random.default_rng(0)
    emb, _ = recordings(rng)
    if isinstance(scorer, Symmetric):
        emb = {u: v[:2] for u, v in emb.items()}   # the GMM-UBM's (enrolment vector, test vector)
    rows = np.stack([scorer.rows(v) for v in emb.values()])
    matrix = scorer.score_matrix(rows[:5], rows[5:9])
    ie, it = np.meshgrid(np.arange(5), np.arange(4), indexing="ij")
    np.testing.assert_allclose(matrix.ravel(), scorer.score(rows[:5], rows[5:9], ie.ravel(), it.ravel()), rtol=1e-12)


def test_cosine_scorer_is_the_authors_score_and_a_table_of_one_recording_scores_as_the_pair():
    rng = np.random.default_rng(1)
    emb, _ = recordings(rng)
    mean = rng.normal(size=8) * 0.1
    a, b = emb["s0-0"] - mean, emb["s1-0"] - mean
    expected = 0.5 * (unit(a[0]) @ unit(b[0]) + np.mean([unit(x) for x in a[1:]], axis=0)
                      @ np.mean([unit(y) for y in b[1:]], axis=0))
    assert score_trials(emb, [("s0-0", "s1-0")], mean=mean)[0] == pytest.approx(expected, abs=1e-12)
    scorer = CosineScorer(mean)
    table = np.stack([scorer.enrol([scorer.rows(emb["s0-0"])])])
    assert scorer.score_matrix(table, scorer.rows(emb["s1-0"])[None])[0, 0] == pytest.approx(expected, abs=1e-12)
    # no crops on one side: the full-utterance cosine alone
    assert scorer.score(scorer.rows(emb["s0-0"])[None], scorer.rows(emb["s1-0"][0])[None])[0] == \
        pytest.approx(unit(a[0]) @ unit(b[0]), abs=1e-12)
    with pytest.raises(ValueError, match="zero vector"):
        scorer.rows(np.tile(mean, (2, 1)), "silence")


def test_plda_scorer_is_the_plda_llr_and_enrols_as_ivector_mean():
    rng = np.random.default_rng(2)
    train, spk2utt = recordings(rng, speakers=30, per_speaker=6, crops=0, spread=0.5)
    speakers = [u.split("-")[0] for u in train]
    plda = PLDA.fit(np.stack([v[0] for v in train.values()]), speakers, 4)
    test, _ = recordings(rng, speakers=4, per_speaker=3, crops=2)
    pairs = [("s0-0", "s0-1"), ("s0-0", "s1-0"), ("s2-2", "s3-1")]
    got = score_trials_with(PLDAScorer(plda), test, pairs)
    expected = plda.score(np.stack([test[a][0] for a, _ in pairs]), np.stack([test[b][0] for _, b in pairs]))
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    # two enrolment recordings: Kaldi's mean of the projected vectors, scored with num_enroll 2
    scorer = PLDAScorer(plda)
    speaker = scorer.enrol([scorer.rows(test["s0-0"]), scorer.rows(test["s0-1"])])
    projected = plda.project(np.stack([test["s0-0"][0], test["s0-1"][0]])).mean(axis=0)
    direct = plda.llr(plda.to_plda_space(projected, 2), plda.to_plda_space(plda.project(test["s0-2"][0])), 2)
    assert scorer.score(speaker[None], scorer.rows(test["s0-2"])[None])[0] == pytest.approx(direct[0], rel=1e-12)


def test_scorer_for_follows_the_systems_registry():
    mean = np.zeros(4) + 0.1
    assert isinstance(scorer_for({"arch": "resnet34"}, mean), CosineScorer)
    assert isinstance(scorer_for({"arch": "gmm_ubm"}), LinearScorer)
    assert isinstance(scorer_for({"arch": "gmm_ubm", "symmetric": True}), Symmetric)
    with pytest.raises(ValueError, match="training mean"):
        scorer_for({"arch": "gmm_resnext"})
    with pytest.raises(Exception, match="unknown arch"):
        scorer_for({"arch": "xvector"})


def test_as_norm_of_a_symmetric_scorer_normalises_each_direction_and_gives_the_raw_scores_too():
    rng = np.random.default_rng(3)
    emb = {f"u{k}": rng.normal(size=(2, 6)) for k in range(7)}
    cohort = rng.normal(size=(9, 2, 6))
    pairs = [("u0", "u1"), ("u2", "u3"), ("u4", "u0"), ("u5", "u6")]
    normed = with_as_norm(Symmetric(LinearScorer()), cohort, 4)
    _, rows, ie, it = gather_rows(normed, emb, pairs)
    one_way = ASNorm(LinearScorer(), cohort, 4)
    expected = 0.5 * (one_way.score(rows, rows, ie, it) + one_way.score(rows, rows, it, ie))
    raw, got = raw_and_normalised(normed, rows, rows, ie, it)
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    np.testing.assert_allclose(got, normed.score(rows, rows, ie, it), rtol=1e-12)
    np.testing.assert_allclose(raw, Symmetric(LinearScorer()).score(rows, rows, ie, it), rtol=1e-12)


def test_calibrated_scorer_gives_llrs():
    rng = np.random.default_rng(4)
    emb, _ = recordings(rng)
    calibration = Calibration(4.0, -1.5, 0.5, 10, 10)
    pairs = [("s0-0", "s0-1"), ("s0-0", "s2-1")]
    scorer = CosineScorer(np.zeros(8))
    raw = score_trials_with(scorer, emb, pairs)
    np.testing.assert_allclose(score_trials_with(Calibrated(scorer, calibration), emb, pairs), 4.0 * raw - 1.5)


def test_identification_calibration_names_the_best_person_by_bayes_rule():
    """Fitted on the enrolment condition of development people; the threshold on the LLR is
    log(p_unknown * N / (1 - p_unknown)), so it rises with the table's size, and a JSON round trip keeps it."""
    rng = np.random.default_rng(5)
    emb, spk2utt = recordings(rng, speakers=10, per_speaker=6, spread=0.8)
    scorer = CosineScorer(np.zeros(8))
    fitted = IdentificationCalibration.fit(scorer, emb, spk2utt, sorted(spk2utt)[:6], "test", 0.5)
    assert fitted.speakers == tuple(sorted(spk2utt)[:6]) and fitted.enrolment_recordings == 3
    assert fitted.test_recordings == 6 * 3 and fitted.calibration.scale > 0
    assert fitted.llr_threshold(1) == pytest.approx(0.0) and fitted.llr_threshold(20) == pytest.approx(np.log(20))
    assert fitted.score_threshold(20) > fitted.score_threshold(2)
    assert fitted.calibration.apply(fitted.score_threshold(7)) == pytest.approx(np.log(7))
    assert IdentificationCalibration.from_json(fitted.to_json()) == fitted
    with pytest.raises(ValueError, match="at least 2"):
        IdentificationCalibration.fit(scorer, emb, spk2utt, ["s0"], "test", 0.5)
