"""Importing a user's evaluation set (`import_data_dir`): names that would break the recipe are refused, and a
re-import with new contents replaces the set and what stages derived from it, while an identical one redoes nothing."""
from __future__ import annotations

import re
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from pipeline.features.mfcc import MfccOptions
from pipeline.stages.make_mfcc import DONE_NAME, make_mfcc, stage_key
from pipeline.utils.datadir import IMPORTED_FROM, DataDir, DataDirError, copy_data_dir, import_data_dir
from pipeline.utils.set_names import derived_from
from pipeline.utils.stage import is_done
from pipeline.utils.trials import all_pairs_trials, write_trials
from synthetic_corpus import make_corpus

OPTS = replace(MfccOptions(), fbank=True)
RESERVED = {"train", "test"}


def user_set(tmp_path: Path, name: str, utts_per_speaker: int = 2) -> Path:
    """A user's set `name` outside the data root: 2 speakers, short real wavs, all-pairs trials."""
    data = make_corpus(tmp_path / "user", "u", 2, utts_per_speaker, seconds=(1.0, 1.2), first_speaker=20)
    write_trials(data / "trials", all_pairs_trials(DataDir.load(data).utt2spk))
    named = data.with_name(name)
    if named.exists():
        shutil.rmtree(named)
    return data.rename(named)


def test_derived_from_names_the_set_a_derived_dir_comes_from():
    assert derived_from("evK_fbank") == "evK" and derived_from("evK_lgp_gi") == "evK"
    assert derived_from("x_lgp_lgp_gi") == "x_lgp" and derived_from("x_lgp_fbank") == "x_lgp"
    assert derived_from("x_lgp") is None and derived_from("fbank") is None and derived_from("evK-fbank") is None


@pytest.mark.parametrize("name", ["evK_fbank", "evK_lgp_gi", "a_lgp_b"])
def test_a_name_a_derived_dir_could_take_is_refused(tmp_path, name):
    with pytest.raises(DataDirError, match=re.escape(repr(name)) + " is the name .* rename it"):
        import_data_dir(user_set(tmp_path, name), tmp_path / "data", RESERVED)
    assert not (tmp_path / "data" / name).exists()


@pytest.mark.parametrize("name", ["my set", "a'b", "a|b", "a;b", "a$b", "-a"])
def test_a_name_that_breaks_kaldi_ids_or_shell_words_is_refused(tmp_path, name):
    with pytest.raises(DataDirError, match=re.escape(f"set names become Kaldi ids and shell words: rename {name!r}")):
        import_data_dir(user_set(tmp_path, name), tmp_path / "data", RESERVED)


def test_a_set_whose_derived_names_land_on_another_set_is_refused(tmp_path):
    """`evK_fbank`, imported before such names were refused, is a set: importing `evK` must not let stage 1 write
    evK's filterbank data dir over it."""
    root = tmp_path / "data"
    other = make_corpus(tmp_path / "old", "evK_fbank", 2, 2, seconds=(1.0, 1.2))
    copy_data_dir(other, root / "evK_fbank")
    (root / "evK_fbank" / IMPORTED_FROM).write_text(f"{other}\n")
    before = {p.name: p.read_bytes() for p in (root / "evK_fbank").iterdir()}
    with pytest.raises(DataDirError, match=r"evK_fbank.* not derived from it.*rename"):
        import_data_dir(user_set(tmp_path, "evK"), root, RESERVED)
    assert not (root / "evK").exists()
    assert {p.name: p.read_bytes() for p in (root / "evK_fbank").iterdir()} == before
    with pytest.raises(DataDirError, match=r"ev2_fbank.* not derived from it"):  # a set of the recipe's
        import_data_dir(user_set(tmp_path, "ev2"), root, RESERVED | {"ev2_fbank"})


def test_reimport_replaces_what_stages_derived_only_when_the_contents_changed(tmp_path):
    root = tmp_path / "data"
    src = user_set(tmp_path, "evK")
    dst = import_data_dir(src, root, RESERVED)
    make_mfcc(dst, tmp_path / "mfcc", tmp_path / "log", OPTS, nj=1)
    lgp = root / "evK_lgp_gi"  # stands for stage 3's output: a data dir derived from evK
    copy_data_dir(dst, lgp)
    stage1 = [dst / n for n in ("feats.scp", "vad.scp", "utt_cmvn.scp", "utt2num_frames", f".done.{DONE_NAME}")]
    stage1 += [root / "evK_fbank" / "feats.scp", lgp / "utt2spk"]
    written = [p.stat().st_mtime_ns for p in stage1]

    assert import_data_dir(src, root, RESERVED) == dst  # the same contents: nothing to redo
    assert [p.stat().st_mtime_ns for p in stage1] == written
    assert is_done(dst, DONE_NAME, stage_key(dst, OPTS))
    (src / "trials").write_text("".join((src / "trials").read_text().splitlines(keepends=True)[:-1]))
    import_data_dir(src, root, RESERVED)  # another trials list alone: the features stay
    assert (dst / "trials").read_bytes() == (src / "trials").read_bytes()
    assert [p.stat().st_mtime_ns for p in stage1] == written

    src = user_set(tmp_path, "evK", utts_per_speaker=3)  # the same set, one new utterance per speaker
    import_data_dir(src, root, RESERVED)
    assert not {"feats.scp", "vad.scp", "utt_cmvn.scp", "utt2num_frames", f".done.{DONE_NAME}"} & {
        p.name for p in dst.iterdir()}
    assert not (root / "evK_fbank").exists() and not lgp.exists()
    assert (dst / IMPORTED_FROM).read_text().strip() == str(src.resolve())
    assert len(DataDir.load(dst).utts) == 6
    make_mfcc(dst, tmp_path / "mfcc", tmp_path / "log", OPTS, nj=1)  # stage 1 takes the new set as it is
    assert len(DataDir.load(dst).usable_utts) == 6
