"""The rehearsal of conf/voxceleb.yaml (local/rehearse_voxceleb.sh): VoxCeleb1 (wav), VoxCeleb2 (m4a), RIRS_NOISES
and MUSAN trees of real synthesised speech, in their distributed layouts, through stages 0-6 of the paper's config
with only sizes and paths overridden. It fails when any stage of conf/voxceleb.yaml breaks."""
from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from pipeline.recipe_layout import score_row, trained_models
from pipeline.utils.checkpoint import load_checkpoint
from pipeline.utils.config import apply_overrides, load_config
from pipeline.utils.datadir import DataDir

pytestmark = [pytest.mark.e2e, pytest.mark.longest]

REPO = Path(__file__).resolve().parents[1]
LISTS = ("trials_O", "trials_E", "trials_H")
# The large-margin phase runs for gmm_resnext only: the same code for each network (each one's own step is already
# rehearsed by its first phase), and 2 trainings, 4 extractions and their scoring less (a fifth of the test's time).
LEFT_OUT = ("models.resnet34.train.large_margin=null", "models.ecapa_tdnn.train.large_margin=null")


def voices_missing() -> str:
    from local.demo.tts_voices import SynthesisError
    from local.rehearsal.celebrities import rehearsal_voices
    try:
        rehearsal_voices(0)
    except SynthesisError as err:
        return str(err)
    return ""


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg not installed (tests/run.sh installs it as root)")
@pytest.mark.skipif(bool(voices_missing()), reason=voices_missing() or "voices installed")
def test_the_voxceleb_config_runs_stages_0_to_6_and_scores_every_model_on_every_list(tmp_path):
    # --nj 1: every job in the stage's own process; the split into jobs is the trained recipe's test's (--nj 2).
    proc = subprocess.run([str(REPO / "local" / "rehearse_voxceleb.sh"), "--nj", "1", "--override",
                           " ".join(LEFT_OUT), str(tmp_path)],
                          capture_output=True, text=True, timeout=1200, env={**os.environ, "PYTHONPATH": ""})
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    recipe = tmp_path / "recipe"
    paper = load_config(REPO / "conf" / "voxceleb.yaml")

    test_set = DataDir.load(recipe / "data" / "voxceleb1")
    assert sorted(test_set.trials) == sorted(LISTS)
    models = trained_models(apply_overrides(paper, LEFT_OUT))   # each entry, and its large-margin phase if any
    assert "gmm_resnext_lm" in models and "resnet34_lm" not in models
    assert not (recipe / "exp" / "resnet34_lm").exists()
    for model in models:
        for name in LISTS:
            row = json.loads(score_row(recipe / "exp" / model, "voxceleb1", name).read_text())
            assert row["trials scored"] == f"{len(test_set.trials[name])} of {len(test_set.trials[name])}"
            assert math.isfinite(row["EER %"]) and math.isfinite(row["EER % AS-Norm"])
    table = [line.split(" | ") for line in (recipe / "exp" / "results.md").read_text().splitlines()
             if line.startswith("| ")]
    rows = {(cells[0][2:], cells[3]) for cells in table[2:]}   # model, trials
    assert {(m, f"voxceleb1/{name}") for m in models for name in LISTS} <= rows

    # The paper's code paths, not smaller ones: m4a through ffmpeg, augmentation from RIRS_NOISES and MUSAN, 512
    # Gaussians on 80 cepstra, the paper-size networks trained for at least a step, dGMM's second step.
    assert all(e.startswith("ffmpeg ") for e in DataDir.load(recipe / "data" / "voxceleb2_dev").table("wav.scp")
               .values())
    conditions = (recipe / "corpus" / "train_aug" / "conditions.tsv").read_text()
    assert "\tsmallroom/" in conditions or "\tmediumroom/" in conditions
    assert "\tmusic\t" in conditions and "speech-" in conditions
    gmm = load_checkpoint(recipe / "exp" / "gmm_resnext" / "models" / "final.pt")["gmms"]["gi"]
    assert tuple(gmm["means"].shape) == (512, 80)
    for model in ("gmm_resnext", "dgmm_resnext", "resnet34", "ecapa_tdnn"):
        sizes = {k: v for k, v in paper["models"][model].items() if k != "input"}
        frozen = load_config(recipe / "exp" / model / "config.yaml")["model"]
        assert {k: frozen[k] for k in sizes} == sizes
        assert load_checkpoint(recipe / "exp" / model / "models" / "epoch_1.pt")["stats"]["samples"] > 0
    assert (recipe / "exp" / "dgmm_resnext" / "models" / "fusion_epoch_1.pt").is_file()
