"""The one directory swap: a complete new directory in, the old one kept until then, links replaced not followed."""
from __future__ import annotations

from pathlib import Path

from pipeline.utils.atomic import aside_path, recover_directory, swap_in_directory


def make_dir(path: Path, text: str) -> Path:
    path.mkdir(parents=True)
    (path / "table").write_text(text)
    return path


def test_swap_replaces_the_directory_whole_and_leaves_nothing_aside(tmp_path):
    final = make_dir(tmp_path / "set", "old")
    (final / "stale").write_text("from the old contents")
    swap_in_directory(make_dir(tmp_path / ".set.staging", "new"), final)
    assert sorted(p.name for p in final.iterdir()) == ["table"] and (final / "table").read_text() == "new"
    assert not aside_path(final).exists() and not (tmp_path / ".set.staging").exists()


def test_a_link_at_the_final_name_is_replaced_never_followed(tmp_path):
    target = make_dir(tmp_path / "elsewhere", "not ours")
    final = tmp_path / "set"
    final.symlink_to(target)
    swap_in_directory(make_dir(tmp_path / "staged", "new"), final)
    assert not final.is_symlink() and (final / "table").read_text() == "new"
    assert (target / "table").read_text() == "not ours"


def test_a_swap_cut_short_between_its_renames_is_recovered(tmp_path):
    final = tmp_path / "set"
    make_dir(aside_path(final), "previous")   # the old one renamed aside, the new one not yet in
    recover_directory(final)
    assert (final / "table").read_text() == "previous" and not aside_path(final).exists()
    recover_directory(final)   # nothing aside: nothing to do
    assert (final / "table").read_text() == "previous"


def test_a_leftover_aside_directory_never_survives_the_next_swap(tmp_path):
    final = make_dir(tmp_path / "set", "current")
    make_dir(aside_path(final), "older, left by a crash after the second rename")
    swap_in_directory(make_dir(tmp_path / "staged", "new"), final)
    assert (final / "table").read_text() == "new" and not aside_path(final).exists()
