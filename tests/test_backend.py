"""Stage 6's back end (pipeline/stages/backend.py): calibration and fusion trained on the other half of the test
people, rows with Cllr / minCllr / actDCF beside EER and minDCF."""
from __future__ import annotations

import json

import numpy as np
import pytest

from pipeline.recipe_layout import score_row
from pipeline.scoring import Calibration, Fusion, compute_act_dcf, write_scores
from pipeline.stages.backend import BackendSettings, backend_rows, cross_fitted, speaker_halves, train_plda
from pipeline.stages.score import interval_columns, read_sources
from pipeline.utils.archive import write_archive
from pipeline.utils.datadir import DataDir
from pipeline.utils.log import get_logger
from pipeline.utils.stage import mark_done
from pipeline.utils.trials import all_pairs_trials

SPEAKERS = [f"spk{k:02d}" for k in range(12)]


def corpus(tmp_path, rng):
    utt2spk = {f"{s}-{u}": s for s in SPEAKERS for u in range(4)}
    gender = {s: "mf"[k % 2] for k, s in enumerate(SPEAKERS)}
    DataDir({"wav.scp": {u: f"{u}.wav" for u in utt2spk}, "utt2spk": utt2spk},
            {"spk2gender": gender}).save(tmp_path / "data" / "test")
    trials = all_pairs_trials(utt2spk)
    # two systems on different, wrong scales: a target's score is higher, more so for the better system
    truth = trials.labels.astype(float)
    scores = {"good": 30 * (truth + rng.normal(0, 0.6, truth.size)) - 7,
              "weak": 0.1 * (truth + rng.normal(0, 1.0, truth.size)) + 2}
    rows = {}
    for model, values in scores.items():
        path = score_row(tmp_path / "exp" / model, "test", "trials_O")
        path.parent.mkdir(parents=True)
        write_scores(path.with_suffix(".score"), trials, values)
        write_scores(path.with_suffix(".asnorm.score"), trials, values + rng.normal(0, 0.01, values.size))
        rows[model] = {"model": model, "params": "1 M", "front end": model, "trials": "test/trials_O",
                       "trials scored": f"{len(trials)} of {len(trials)}", "embeddings": {}}
    return trials, rows


def run_backend(tmp_path, trials, rows, pldas, settings, log):
    """backend_rows of the list trials_O of set test for models good and weak, from their score files."""
    from pipeline.embedding_files import load_embeddings

    backend_rows(tmp_path / "exp", tmp_path / "data", "test", ["good", "weak"], "trials_O", trials, rows,
                 lambda m: read_sources(tmp_path / "exp" / m, "test", "trials_O", len(trials)), pldas,
                 lambda m: load_embeddings(tmp_path / "exp" / m / "embeddings" / "test"), settings, 50,
                 interval_columns, log)


def test_halves_are_speaker_disjoint_balanced_and_stable():
    gender = {s: "mf"[k % 2] for k, s in enumerate(SPEAKERS)}
    halves = speaker_halves(gender, set(SPEAKERS))
    assert sorted(halves) == SPEAKERS and sum(halves.values()) == 6
    for g in "mf":
        assert sum(h for s, h in halves.items() if gender[s] == g) == 3
    assert speaker_halves(gender, set(reversed(SPEAKERS))) == halves


def test_no_trial_is_scored_by_a_map_trained_on_its_enrolment_speaker():
    rng = np.random.default_rng(0)
    half_enroll, half_test = rng.integers(0, 2, 200), rng.integers(0, 2, 200)
    seen = []

    def fit_apply(train, apply):
        seen.append((train.copy(), apply.copy()))
        return np.zeros(apply.sum()), "raw"
    cross_fitted(np.zeros(200), half_enroll, half_test, fit_apply)
    covered = np.zeros(200, dtype=int)
    for train, apply in seen:
        covered += apply
        trained_on = set(half_enroll[train]) | set(half_test[train])
        assert not set(half_enroll[apply]) & trained_on
    assert (covered == 1).all()


def test_calibrated_and_fused_rows_are_llrs(tmp_path):
    rng = np.random.default_rng(1)
    trials, rows = corpus(tmp_path, rng)
    settings = BackendSettings(p_target=0.05, fusion=None, plda_lda_dim=None)
    log = get_logger("test_backend")
    run_backend(tmp_path, trials, rows, {"good": None, "weak": None}, settings, log)
    good = json.loads((tmp_path / "exp/good/scores/test_trials_O.calibrated.json").read_text())
    weak = json.loads((tmp_path / "exp/weak/scores/test_trials_O.calibrated.json").read_text())
    fused = json.loads((tmp_path / "exp/fusion/scores/test_trials_O.json").read_text())
    assert good["model"] == "good calibrated" and fused["model"] == "fusion"
    for row in (good, weak, fused):
        # calibrated: Cllr near its minimum, actDCF near minDCF at the prior it decides at (raw scores on these
        # scales would give a Cllr far above 1)
        assert row["minCllr"] <= row["Cllr"] < row["minCllr"] + 0.1 and row["Cllr"] < 1
        assert row["actDCF0.05"] >= 0 and "EER 95% CI" in row
        for column in ("minDCF0.01", "Cllr", "minCllr", "actDCF0.05"):   # every column with its interval
            low, high = json.loads(row[f"{column} 95% CI"])
            assert low <= high
    assert good["EER %"] < weak["EER %"] and fused["Cllr"] <= good["Cllr"] + 0.02
    assert "good" in fused["calibrated from"] and "weak" in fused["calibrated from"]
    # a second call with the same inputs does nothing; a changed score file redoes the rows
    before = (tmp_path / "exp/fusion/scores/test_trials_O.json").stat().st_mtime_ns
    run_backend(tmp_path, trials, rows, {"good": None, "weak": None}, settings, log)
    assert (tmp_path / "exp/fusion/scores/test_trials_O.json").stat().st_mtime_ns == before
    write_scores(tmp_path / "exp/weak/scores/test_trials_O.score", trials, rng.normal(size=len(trials)))
    run_backend(tmp_path, trials, rows, {"good": None, "weak": None}, settings, log)
    assert (tmp_path / "exp/fusion/scores/test_trials_O.json").stat().st_mtime_ns != before


def test_calibration_and_fusion_are_trained_at_the_prior_actdcf_is_measured_at(tmp_path):
    # Non-targets far wider than targets: no affine map is right at every prior, and one trained at 0.5 sets a
    # threshold too low for p_target 0.01. Trained at p_target, actDCF there is at its lowest for an affine map.
    rng = np.random.default_rng(3)
    trials, rows = corpus(tmp_path, rng)
    truth = trials.labels.astype(bool)
    for model, spread in (("good", 4.0), ("weak", 5.0)):
        values = np.where(truth, rng.normal(4.0, 1.0, truth.size), rng.normal(0.0, spread, truth.size))
        path = score_row(tmp_path / "exp" / model, "test", "trials_O")
        write_scores(path.with_suffix(".score"), trials, values)
        write_scores(path.with_suffix(".asnorm.score"), trials, values)
    settings = BackendSettings(p_target=0.01, fusion=None, plda_lda_dim=None)
    run_backend(tmp_path, trials, rows, {"good": None, "weak": None}, settings, get_logger("test_backend"))
    good = json.loads((tmp_path / "exp/good/scores/test_trials_O.calibrated.json").read_text())
    data = DataDir.load(tmp_path / "data" / "test")
    halves = speaker_halves(data.spk_tables["spk2gender"], set(data.utt2spk.values()))
    half_enroll = np.array([halves[data.utt2spk[u]] for u in trials.enroll.tolist()])
    half_test = np.array([halves[data.utt2spk[u]] for u in trials.test.tolist()])
    scores = read_sources(tmp_path / "exp" / "good", "test", "trials_O", len(trials))["raw"]

    def at_half(train, apply):
        return Calibration.fit(scores[train], trials.labels[train], 0.5).apply(scores[apply]), "raw"
    llrs_at_half = cross_fitted(trials.labels, half_enroll, half_test, at_half)[0]
    assert good["actDCF0.01"] < compute_act_dcf(llrs_at_half, trials.labels, 0.01) - 0.05
    assert good["actDCF0.01"] < 1.1 * good["minDCF0.01"]
    # the fusion likewise
    fused = json.loads((tmp_path / "exp/fusion/scores/test_trials_O.json").read_text())
    both = {m: read_sources(tmp_path / "exp" / m, "test", "trials_O", len(trials))["raw"] for m in ("good", "weak")}

    def fused_at_half(train, apply):
        fusion = Fusion.fit({m: s[train] for m, s in both.items()}, trials.labels[train], 0.5)
        return fusion.apply({m: s[apply] for m, s in both.items()}), "raw"
    fused_llrs_at_half = cross_fitted(trials.labels, half_enroll, half_test, fused_at_half)[0]
    assert fused["actDCF0.01"] < compute_act_dcf(fused_llrs_at_half, trials.labels, 0.01) - 0.05


@pytest.mark.parametrize("lda_dim", [None, 3])
def test_settings_from_config(lda_dim):
    settings = BackendSettings.from_config({"p_target": 0.001, "plda": None if lda_dim is None else
                                            {"lda_dim": lda_dim}, "fusion": ["a", "b"]})
    assert settings == BackendSettings(0.001, ("a", "b"), lda_dim)


def test_plda_rows_score_the_embeddings_with_a_plda_of_the_cohort(tmp_path):
    """An embedding model gets a `<model>/plda` row: PLDA trained on the cohort set's embeddings (kept while they are
    current), scoring the list's enrolment and test embeddings."""
    rng = np.random.default_rng(2)
    trials, rows = corpus(tmp_path, rng)
    centres = {s: rng.normal(0, 1, 8) for s in SPEAKERS + [f"train{k}" for k in range(20)]}
    cohort = {f"train{k}-{u}": f"train{k}" for k in range(20) for u in range(5)}
    DataDir({"wav.scp": {u: f"{u}.wav" for u in cohort}, "utt2spk": cohort}).save(tmp_path / "data" / "train")
    test_utts = set(trials.enroll.tolist()) | set(trials.test.tolist())
    utt2spk = DataDir.load(tmp_path / "data" / "test").utt2spk
    for name, utts, spk_of in (("train", cohort, cohort), ("test", test_utts, utt2spk)):
        emb_dir = tmp_path / "exp/good/embeddings" / name
        emb_dir.mkdir(parents=True)
        scp = write_archive(emb_dir / "xvector", [(u, centres[spk_of[u]] + rng.normal(0, 0.5, 8)) for u in utts])
        mark_done(emb_dir, "extract", name, [scp])   # as stage 5 leaves it
    log = get_logger("test_backend")
    plda = train_plda(tmp_path / "exp/good", "train", cohort, 4, log)
    assert plda is not None and (tmp_path / "exp/good/plda.npz").is_file()
    settings = BackendSettings(p_target=0.05, fusion=None, plda_lda_dim=4)
    run_backend(tmp_path, trials, rows, {"good": plda, "weak": None}, settings, log)
    row = json.loads((tmp_path / "exp/good/scores/test_trials_O.plda.json").read_text())
    assert row["model"] == "good/plda" and "PLDA (LDA 4)" in row["front end"]
    assert row["EER %"] < 25 and not (tmp_path / "exp/weak/scores/test_trials_O.plda.json").exists()


def test_rows_this_config_no_longer_makes_leave_the_results(tmp_path):
    """PLDA turned off, or fusion down to one model: their rows are removed, not left in the results table."""
    rng = np.random.default_rng(3)
    trials, rows = corpus(tmp_path, rng)
    log = get_logger("test_backend")
    plda_row = tmp_path / "exp/good/scores/test_trials_O.plda.json"
    plda_row.write_text(json.dumps({"model": "good/plda"}))   # as an earlier run with PLDA on left it
    run_backend(tmp_path, trials, rows, {"good": None, "weak": None}, BackendSettings(0.05, None, None), log)
    assert not plda_row.exists() and (tmp_path / "exp/fusion/scores/test_trials_O.json").is_file()
    run_backend(tmp_path, trials, rows, {"good": None, "weak": None}, BackendSettings(0.05, ("good",), None), log)
    assert not (tmp_path / "exp/fusion/scores/test_trials_O.json").exists()
    assert (tmp_path / "exp/good/scores/test_trials_O.calibrated.json").is_file()
