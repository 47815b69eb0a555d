#!/usr/bin/env python3
"""The GMM-UBM's levers one at a time (issue 23): from the recipe's gmm_ubm to a "textbook" GMM-UBM, each numbered
row changing one thing from the row before, each measured on every trials list of the test set.

    cd <recipe> && python <repo>/bench/gmm_ubm_levers.py --recipe . --out /tmp/levers [--rows 1,2,5a]

The recipe needs stage 1 only (features and VAD of the GMM set, the cohort set and the test set, and the test set's
trials lists). Every UBM is fitted here with the recipe's own code (stage 2's `sample_frames`, `fit_gmm`), and every
UBM and score matrix is cached under --out (never inside the recipe): a second run prints the table from the cache.

The textbook GMM-UBM: scikit-learn's GaussianMixture (128 diagonal components, reg_covar 1e-3, 30 EM iterations,
random_state 0, its default k-means initialisation) on a random 30% of the voiced frames of the clean training set,
the first 20 cepstra after per-utterance mean removal; MAP-adapted means (r = 16) per enrolment utterance; the exact
frame-averaged LLR of the test utterance; no score normalisation. `fit_gmm(init="kmeans", reg_covar=1e-3,
var_floor=0)` is that fit to rounding (tests/test_features.py).

Scores. Every list of the demo is a subset of all pairs of the test set, so each system scores the whole U x U matrix
once (enrolment rows, test columns) and every list is indexed from it: nothing is subsampled. Kinds: `fixed` (the
fixed-alignment score stage 6 uses: linear scoring plus its quadratic term), `linear`, `exact` (the frame-averaged
LLR with the full log-sum-exp under both models) and `aligned` (the component log-ratios weighted by the enrolment
model's own posteriors; fixed <= exact <= aligned, `ExactScorer`). `sym` averages score(a, b) and score(b, a).
AS-Norm as stage 6 does it (cohort: data.cohort's speakers, top scoring.asnorm_top_n of them): for dot-product scores
with the speakers' mean vectors; for exact and aligned LLRs a cohort speaker's model has the mean of its utterances'
MAP means (the mean vector's counterpart) and its test side is the mean of the LLRs of its utterances, each on a
fixed random share of its frames (--cohort-fraction). A symmetric score is normalised with symmetric cohort scores.
EER intervals: 95% speaker bootstrap (`speaker_bootstrap_eer`, stage 6's).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import yaml  # noqa: E402
from tqdm import tqdm  # noqa: E402

from pipeline.dataset.features import FeatureSource  # noqa: E402
from pipeline.features.gmm import DiagGMM, fit_gmm  # noqa: E402
from pipeline.features.mfcc import features_made_under  # noqa: E402
from pipeline.models.gmm_ubm import ExactScorer, GMMUBM  # noqa: E402
from pipeline.recipe_layout import cohort_set, gmm_set  # noqa: E402
from pipeline.scoring.bootstrap import paired_eer_difference, speaker_bootstrap_eer  # noqa: E402
from pipeline.scoring.cosine import normalise_with_cohort_scores, speaker_means  # noqa: E402
from pipeline.scoring.metrics import compute_min_dcf  # noqa: E402
from pipeline.stages.fit_gmm import gmm_settings, sample_frames  # noqa: E402
from pipeline.stages.score import usable_trials  # noqa: E402
from pipeline.utils.config import fingerprint, load_config  # noqa: E402
from pipeline.utils.datadir import DataDir  # noqa: E402
from pipeline.utils.log import get_logger  # noqa: E402
from pipeline.utils.stage import output_key  # noqa: E402
from pipeline.utils.trials import read_trials, trials_files  # noqa: E402

DOT_KINDS = {"fixed": True, "linear": False}   # dot-product scores: kind -> GMMUBM(quadratic=)
LLR_KINDS = ("exact", "aligned")
LIST_ORDER = ["trials_O", "trials_H", "trials_real"]


@dataclass(frozen=True)
class UBMRecipe:
    """How a UBM is fitted: on which set and frames, with which floor and initialisation."""
    data: str
    fraction: float | None    # a random share of all the (voiced) frames; None: stage 2's budget (gmm max_frames)
    reg_covar: float
    var_floor: float
    init: str
    voiced_only: bool


@dataclass(frozen=True)
class Row:
    step: str
    base: str | None    # the row whose one lever this row changes: the paired differences are taken from it
    change: str
    ubm: UBMRecipe
    kind: str
    symmetric: bool = False


def levers(cfg: dict[str, Any]) -> list[Row]:
    """The rows: the recipe's gmm_ubm, one lever at a time to the textbook, then single levers from either end."""
    settings, model = ubm_settings(cfg)
    recipe = UBMRecipe(data=gmm_set(cfg), fraction=None, reg_covar=1e-6,
                       var_floor=float(settings.get("var_floor", 0.01)), init="k-means++",
                       voiced_only=bool(settings.get("voiced_only", True)))
    clean = replace(recipe, data=cohort_set(cfg))
    floor = replace(clean, reg_covar=1e-3, var_floor=0.0)
    share = replace(floor, fraction=0.3)
    textbook = replace(share, init="kmeans")
    kind = "fixed" if model.get("quadratic", True) else "linear"
    budget = f"{int(settings.get('max_frames', 500_000)):,} frames subsampled"
    return [
        Row("1", None, f"the recipe's gmm_ubm ({recipe.data}, floor {recipe.var_floor} x global var, {budget}, "
                 f"k-means++, {kind})", recipe, kind),
        Row("2", "1", f"UBM on the clean {clean.data}", clean, kind),
        Row("3", "2", "variance floor: reg_covar 1e-3 at every M-step, no relative floor", floor, kind),
        Row("4", "3", "frames: a random 30% of all voiced frames", share, kind),
        Row("4b", "4", "EM initialised by k-means (scikit-learn's default): the textbook UBM", textbook, kind),
        Row("5a", "4b", "score: exact frame-averaged LLR (= the textbook GMM-UBM)", textbook, "exact"),
        Row("5b", "5a", "score: exact, components aligned by the enrolment model", textbook, "aligned"),
        Row("5c", "4b", "score: plain linear (from 4b)", textbook, "linear"),
        Row("6", "5a", "5a made symmetric: mean of score(a,b) and score(b,a)", textbook, "exact", True),
        Row("7", "6", "6 on all frames (no VAD): UBM, enrolment and test", replace(textbook, voiced_only=False),
            "exact", True),
        Row("1+exact", "1", "single lever: 1 scored with the exact LLR", recipe, "exact"),
        Row("1+linear", "1", "single lever: 1 scored with plain linear scoring", recipe, "linear"),
        Row("1+sym", "1", "single lever: 1 made symmetric", recipe, kind, True),
        Row("1+kmeans", "1", "single lever: 1 with k-means initialisation", replace(recipe, init="kmeans"), kind),
        Row("1+30%", "1", "single lever: 1 on 30% of all voiced frames", replace(recipe, fraction=0.3), kind),
        Row("1+allframes", "1", "single lever: 1 on all frames (no VAD)", replace(recipe, voiced_only=False), kind),
        Row("5a+combined", "5a", f"single lever: the textbook with its UBM on {recipe.data}",
            replace(textbook, data=recipe.data), "exact"),
    ]


def ubm_settings(cfg: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The gmm_ubm model entry's stage-2 settings (`gmm.<name>` over `gmm`) and the entry itself."""
    model = next(entry for entry in cfg["models"].values() if entry.get("arch") == "gmm_ubm")
    return gmm_settings(cfg["gmm"], model.get("gmm", "ubm")), model


# ---------------------------------------------------------------------------------------------------------------------
# Frames and UBMs
# ---------------------------------------------------------------------------------------------------------------------
class Frames:
    """One set's frames (first `num_ceps` cepstra, mean removed, voiced or all) as the recipe's FeatureSource reads
    them, read once per set and VAD setting."""

    def __init__(self, recipe: Path, cfg: dict[str, Any], num_ceps: int):
        self.recipe, self.cfg, self.num_ceps = recipe, cfg, num_ceps
        self._sets: dict[tuple[str, bool], dict[str, np.ndarray]] = {}

    def data_dir(self, name: str) -> Path:
        return self.recipe / self.cfg["data"]["root"] / name

    def features_key(self, name: str) -> str:
        """Stage 1's output key of the set: cached UBMs and scores go stale when the features are remade."""
        return output_key(self.data_dir(name), "mfcc", features_made_under(self.cfg.get("features")))

    def source(self, name: str, voiced_only: bool) -> FeatureSource:
        return FeatureSource(self.data_dir(name), ["mfcc"], voiced_only=voiced_only)

    def of(self, name: str, voiced_only: bool) -> dict[str, np.ndarray]:
        """utterance -> frames of the usable utterances of set `name`."""
        if (name, voiced_only) not in self._sets:
            source = self.source(name, voiced_only)
            utts = DataDir.load(self.data_dir(name)).usable_utts
            self._sets[name, voiced_only] = {u: source.read(u)[0][:, :self.num_ceps]
                                             for u in tqdm(utts, desc=f"reading {name}", leave=False, mininterval=2)}
        return self._sets[name, voiced_only]


def training_frames(frames: Frames, ubm: UBMRecipe, settings: dict[str, Any]) -> np.ndarray:
    """The frames a UBM is fitted on: stage 2's subsampling to its budget, or a random share of them all."""
    rng = np.random.default_rng(int(settings.get("seed", 0)))
    if ubm.fraction is None:
        data = DataDir.load(frames.data_dir(ubm.data))
        return sample_frames(data, frames.source(ubm.data, ubm.voiced_only), data.usable_utts,
                             int(settings.get("max_frames", 500_000)), rng)[:, :frames.num_ceps]
    every = np.concatenate(list(frames.of(ubm.data, ubm.voiced_only).values()))
    return every[np.sort(rng.choice(len(every), size=int(round(ubm.fraction * len(every))), replace=False))]


def fitted_ubm(frames: Frames, ubm: UBMRecipe, settings: dict[str, Any], out: Path, log) -> tuple[DiagGMM, dict]:
    """The UBM of `ubm`, from the cache under `out` or fitted (and cached); with its facts (frames, seconds, ...)."""
    key = fingerprint(asdict(ubm), settings, frames.features_key(ubm.data))
    directory = out / "ubm" / key
    if (directory / "info.yaml").is_file():
        return DiagGMM.load_npz(directory / "gmm.npz"), yaml.safe_load((directory / "info.yaml").read_text())
    start = time.perf_counter()
    train = training_frames(frames, ubm, settings)
    gmm, info = fit_gmm(train, int(settings["num_components"]), max_iter=int(settings.get("max_iter", 100)),
                        var_floor=ubm.var_floor, seed=int(settings.get("seed", 0)), init=ubm.init,
                        reg_covar=ubm.reg_covar)
    info.update(frames=int(len(train)), seconds=round(time.perf_counter() - start, 1), recipe=asdict(ubm))
    directory.mkdir(parents=True, exist_ok=True)
    gmm.save_npz(directory / "gmm.npz")
    (directory / "info.yaml").write_text(yaml.safe_dump(info))
    log.info("UBM %s: %d frames, %d iterations, %d variances floored, %.0f s", key, info["frames"],
             info["iterations"], info["floored_variances"], info["seconds"])
    return gmm, info


# ---------------------------------------------------------------------------------------------------------------------
# Score matrices
# ---------------------------------------------------------------------------------------------------------------------
@dataclass
class ScoreMatrix:
    """One system's scores of every (enrolment, test) pair of the test set and of each utterance against the cohort
    speakers: `scores[a, b]` = score(enrol a, test b), `enroll_cohort[a, k]` = score(enrol a, cohort speaker k),
    `test_cohort[b, k]` = score(cohort speaker k, test b)."""
    scores: np.ndarray
    enroll_cohort: np.ndarray
    test_cohort: np.ndarray
    seconds: float

    def symmetric(self) -> "ScoreMatrix":
        """The mean of score(a, b) and score(b, a); an utterance's cohort scores likewise on both sides."""
        cohort = 0.5 * (self.enroll_cohort + self.test_cohort)
        return ScoreMatrix(0.5 * (self.scores + self.scores.T), cohort, cohort, self.seconds)


def dot_matrices(ubm: GMMUBM, test: dict[str, np.ndarray], cohort: dict[str, np.ndarray], utt2spk: dict[str, str],
                 kinds: list[str]) -> dict[str, ScoreMatrix]:
    """Linear and fixed-alignment matrices: stage 5's vectors, stage 6's dot products and cohort speaker means."""
    start = time.perf_counter()
    test_stats = [ubm.stats(x) for x in test.values()]
    cohort_stats = {u: ubm.stats(x) for u, x in cohort.items()}
    out = {}
    for kind in kinds:
        scoring = GMMUBM(ubm.ubm, relevance=ubm.relevance, quadratic=DOT_KINDS[kind])
        enroll = np.stack([scoring.enrollment_vector(s) for s in test_stats]).astype(np.float64)
        tests = np.stack([scoring.test_vector(s) for s in test_stats]).astype(np.float64)
        cohort_enroll = speaker_means({u: scoring.enrollment_vector(s) for u, s in cohort_stats.items()}, utt2spk)[1]
        cohort_test = speaker_means({u: scoring.test_vector(s) for u, s in cohort_stats.items()}, utt2spk)[1]
        out[kind] = ScoreMatrix(enroll @ tests.T, enroll @ cohort_test.T, tests @ cohort_enroll.T, 0.0)
    for matrix in out.values():
        matrix.seconds = time.perf_counter() - start   # statistics shared by the kinds: the time of them all
    return out


def llr_matrices(ubm: GMMUBM, test: dict[str, np.ndarray], cohort: dict[str, np.ndarray], utt2spk: dict[str, str],
                 kinds: list[str], cohort_fraction: float) -> dict[str, ScoreMatrix]:
    """Exact (and enrolment-aligned) LLR matrices: each enrolment model against all test utterances and all cohort
    utterances (on a fixed random share of their frames) in one `ExactScorer` pass each."""
    start = time.perf_counter()
    aligned = "aligned" in kinds
    # A cohort speaker's model: the mean of its utterances' MAP means (of all their frames), as `cohort_vectors`.
    speakers, models = speaker_means({u: ubm.adapt_means(ubm.stats(x)).ravel() for u, x in cohort.items()}, utt2spk)
    rng = np.random.default_rng(0)
    thinned = {}
    for u, x in cohort.items():
        keep = rng.random(len(x)) < cohort_fraction
        keep[0] |= not keep.any()
        thinned[u] = x[keep]
    spk_index = np.searchsorted(speakers, [utt2spk[u] for u in thinned])
    per_speaker = np.bincount(spk_index, minlength=len(speakers))
    test_scorer, cohort_scorer = ExactScorer(ubm, test.values()), ExactScorer(ubm, thinned.values())
    adapted = [ubm.adapt_means(ubm.stats(x)) for x in test.values()]
    matrices = {kind: np.empty((len(test), len(test))) for kind in LLR_KINDS}
    enroll_cohort = {kind: np.empty((len(test), len(speakers))) for kind in LLR_KINDS}
    for a, means in enumerate(tqdm(adapted, desc="exact LLR rows", mininterval=10)):
        for values, cohort_values, kind in zip(test_scorer.scores(means, aligned=aligned),
                                               cohort_scorer.scores(means, aligned=aligned), LLR_KINDS):
            if values is not None:
                matrices[kind][a] = values
                enroll_cohort[kind][a] = np.bincount(spk_index, cohort_values, len(speakers)) / per_speaker
    test_cohort = {kind: np.empty((len(test), len(speakers))) for kind in LLR_KINDS}
    for k, means in enumerate(tqdm(models, desc="cohort models", leave=False, mininterval=10)):
        for values, kind in zip(test_scorer.scores(means.reshape(ubm.ubm.means.shape), aligned=aligned), LLR_KINDS):
            if values is not None:
                test_cohort[kind][:, k] = values
    seconds = time.perf_counter() - start
    return {kind: ScoreMatrix(matrices[kind], enroll_cohort[kind], test_cohort[kind], seconds) for kind in kinds}


def cached_matrices(path: Path, compute) -> dict[str, ScoreMatrix]:
    if path.is_file():
        with np.load(path) as data:
            kinds = sorted({name.split(".")[0] for name in data.files})
            return {k: ScoreMatrix(*(data[f"{k}.{f}"] for f in ("scores", "enroll_cohort", "test_cohort", "seconds")))
                    for k in kinds}
    matrices = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {f"{k}.{field}": np.asarray(getattr(m, field)) for k, m in matrices.items()
              for field in ("scores", "enroll_cohort", "test_cohort", "seconds")}
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, **arrays)
    tmp.replace(path)
    return matrices


# ---------------------------------------------------------------------------------------------------------------------
# Lists and the table
# ---------------------------------------------------------------------------------------------------------------------
@dataclass
class TrialList:
    name: str
    enroll: np.ndarray      # index into the test set's utterances
    test: np.ndarray
    labels: np.ndarray
    enroll_speakers: list[str]
    test_speakers: list[str]


def trial_lists(set_dir: Path, utts: list[str], log) -> list[TrialList]:
    """The set's trials lists (trials_O, trials_H, trials_real first), usable trials only, as indices into `utts`."""
    data = DataDir.load(set_dir)
    index = {u: i for i, u in enumerate(utts)}
    lists = []
    for path in sorted(trials_files(set_dir), key=lambda p: (LIST_ORDER + [p.name]).index(p.name)):
        trials = usable_trials(read_trials(path), data, log)
        lists.append(TrialList(path.name, np.array([index[u] for u in trials.enroll.tolist()]),
                               np.array([index[u] for u in trials.test.tolist()]), trials.labels,
                               [data.utt2spk[u] for u in trials.enroll.tolist()],
                               [data.utt2spk[u] for u in trials.test.tolist()]))
    return lists


def list_scores(matrix: ScoreMatrix, trials: TrialList, top_n: int) -> tuple[np.ndarray, np.ndarray]:
    """A list's scores, raw and after AS-Norm."""
    scores = matrix.scores[trials.enroll, trials.test]
    return scores, normalise_with_cohort_scores(scores, matrix.enroll_cohort, matrix.test_cohort, top_n,
                                                trials.enroll, trials.test)


def eer_cell(values: np.ndarray, trials: TrialList, replicates: int) -> str:
    """`EER [95% CI] / minDCF(0.01)`, in percent and as a proportion."""
    interval = speaker_bootstrap_eer(values, trials.labels, trials.enroll_speakers, trials.test_speakers,
                                     replicates=replicates)
    return f"{interval} / {compute_min_dcf(values, trials.labels, 0.01)[0]:.3f}"


def difference_cell(values: np.ndarray, reference: np.ndarray, trials: TrialList, replicates: int) -> str:
    """The paired EER difference in points with its interval; bold where the interval excludes 0."""
    d = paired_eer_difference(values, reference, trials.labels, trials.enroll_speakers, trials.test_speakers,
                              replicates=replicates)
    text = f"{100 * d.eer:+.2f} [{100 * d.low:+.2f}, {100 * d.high:+.2f}]"
    return f"**{text}**" if d.low > 0 or d.high < 0 else text


def markdown(header: list[str], rows: list[list[str]]) -> str:
    return "\n".join(["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
                     + ["| " + " | ".join(cells) + " |" for cells in rows])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipe", type=Path, required=True, help="a recipe directory whose stages 0-1 ran")
    parser.add_argument("--out", type=Path, required=True, help="where fitted UBMs and score matrices are cached")
    parser.add_argument("--config", type=Path, help="the recipe's config (default <recipe>/conf/demo.yaml)")
    parser.add_argument("--override", "-o", action="append", default=[], help="config override, as run.sh's")
    parser.add_argument("--set", help="the test set (default the first of data.test)")
    parser.add_argument("--rows", help="comma-separated steps to run (default all)")
    parser.add_argument("--cohort-fraction", type=float, default=0.1,
                        help="share of each cohort utterance's frames an exact LLR's cohort side is scored on")
    parser.add_argument("--replicates", type=int, default=1000, help="speaker-bootstrap replicates per EER interval")
    args = parser.parse_args()
    recipe, out = args.recipe.resolve(), args.out.resolve()
    if out == recipe or recipe in out.parents:
        parser.error(f"--out {out} lies inside the recipe {recipe}: give a directory outside it")
    os.chdir(recipe)   # the scp files name their archives relative to the recipe
    cfg = load_config(args.config or recipe / "conf" / "demo.yaml", args.override)
    log = get_logger("gmm_ubm_levers", out / "gmm_ubm_levers.log")
    settings, model = ubm_settings(cfg)
    relevance, top_n = float(model.get("relevance", 16)), int((cfg.get("scoring") or {}).get("asnorm_top_n", 300))
    test_set = args.set or cfg["data"]["test"][0]
    rows = levers(cfg)
    if args.rows:
        wanted = args.rows.split(",")
        rows = [r for r in rows if r.step in wanted]
    frames = Frames(recipe, cfg, int(settings.get("num_ceps") or 0) or None)
    cohort_name = cohort_set(cfg)
    cohort_utt2spk = DataDir.load(frames.data_dir(cohort_name)).utt2spk
    test_utts = DataDir.load(frames.data_dir(test_set)).usable_utts
    lists = trial_lists(frames.data_dir(test_set), test_utts, log)
    inputs_key = fingerprint(frames.features_key(test_set), frames.features_key(cohort_name), cohort_name,
                             relevance, args.cohort_fraction)

    results: dict[tuple[UBMRecipe, str, bool], tuple[ScoreMatrix, dict]] = {}
    for ubm_recipe in dict.fromkeys(r.ubm for r in rows):
        gmm, info = fitted_ubm(frames, ubm_recipe, settings, out, log)
        check_against_stage2(gmm, ubm_recipe, cfg, log)
        ubm = GMMUBM(gmm, relevance=relevance)
        test = {u: frames.of(test_set, ubm_recipe.voiced_only)[u] for u in test_utts}
        cohort = frames.of(cohort_name, ubm_recipe.voiced_only)
        kinds = sorted({r.kind for r in rows if r.ubm == ubm_recipe})
        key = fingerprint(gmm.fingerprint(), inputs_key, ubm_recipe.voiced_only)
        matrices = {}
        dots = [k for k in kinds if k in DOT_KINDS]
        if dots:
            matrices.update(cached_matrices(out / "scores" / f"{key}-{'-'.join(dots)}.npz",
                                            lambda: dot_matrices(ubm, test, cohort, cohort_utt2spk, dots)))
        llrs = [k for k in LLR_KINDS if k in kinds or (k == "exact" and "aligned" in kinds)]
        if llrs:
            matrices.update(cached_matrices(out / "scores" / f"{key}-{'-'.join(llrs)}.npz",
                                            lambda: llr_matrices(ubm, test, cohort, cohort_utt2spk, llrs,
                                                                 args.cohort_fraction)))
        for kind, matrix in matrices.items():
            results[ubm_recipe, kind, False] = (matrix, info)
            results[ubm_recipe, kind, True] = (matrix.symmetric(), info)
        log.info("UBM %s: scored (%s)", key, ", ".join(f"{k} {float(m.seconds):.0f} s" for k, m in matrices.items()))

    scores = {(row.step, t.name): list_scores(results[row.ubm, row.kind, row.symmetric][0], t, top_n)
              for row in rows for t in lists}
    header = ["step", "what changed", "UBM frames", "UBM fit s", "scoring s"]
    for trials in lists:
        header += [f"{trials.name} EER % [95% CI] / minDCF0.01", f"{trials.name} AS-Norm"]
    eers = []
    for row in rows:
        matrix, info = results[row.ubm, row.kind, row.symmetric]
        eers.append([row.step, row.change, f"{info['frames']:,}", f"{info['seconds']:.0f}",
                     f"{float(matrix.seconds):.0f}"]
                    + [eer_cell(v, t, args.replicates) for t in lists for v in scores[row.step, t.name]])
    header_d = ["step", "from"] + [f"{t.name}{suffix}" for t in lists for suffix in ("", " AS-Norm")]
    differences = [[row.step, row.base] + [difference_cell(v, ref, t, args.replicates) for t in lists
                                           for v, ref in zip(scores[row.step, t.name], scores[row.base, t.name])]
                   for row in rows if row.base is not None and (row.base, lists[0].name) in scores]
    counts = ", ".join(f"{t.name} {len(t.labels):,} trials ({int(t.labels.sum()):,} target, "
                       f"{len({*t.enroll_speakers, *t.test_speakers})} speakers)" for t in lists)
    cohort_size = len(set(cohort_utt2spk.values()))
    table = (markdown(header, eers) + f"\n\nAll trials of each list ({counts}); AS-Norm cohort: the {cohort_size} "
             f"{cohort_name} speakers, top {min(top_n, cohort_size)}; intervals: {args.replicates} speaker-bootstrap "
             f"replicates; seconds: wall clock on this machine.\n\nPaired EER differences (points) from the row each "
             f"changes, 95% interval over the same speaker resamplings for both; bold: the interval excludes 0.\n\n"
             + markdown(header_d, differences))
    (out / "levers.md").write_text(table + "\n")
    print(table)


def check_against_stage2(gmm: DiagGMM, ubm: UBMRecipe, cfg: dict[str, Any], log) -> None:
    """Row 1's UBM is stage 2's: say whether it matches the recipe's exp/gmm/<name>/gmm.npz when there is one."""
    if ubm != levers(cfg)[0].ubm:
        return
    _, model = ubm_settings(cfg)
    path = Path(cfg["gmm"].get("root", "exp/gmm")) / model.get("gmm", "ubm") / "gmm.npz"
    if not path.is_file():
        log.info("%s not there (stage 2 not run): row 1's UBM not compared with it", path)
        return
    stage2 = DiagGMM.load_npz(path)
    # Rounding differences (BLAS threads, another version's mean removal) grow over the EM iterations: relative.
    worst = max(float(np.abs(getattr(gmm, n) - getattr(stage2, n)).max() / np.abs(getattr(stage2, n)).max())
                for n in ("weights", "means", "variances"))
    log.info("row 1's UBM against stage 2's %s: largest difference %.1e of the parameter's range", path, worst)


if __name__ == "__main__":
    main()
