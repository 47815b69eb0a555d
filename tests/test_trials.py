"""Kaldi trials lists: the one reader and writer (file and line in every error), and the list makers a corpus recipe
uses (VoxCeleb1-O style random pairs, H style same-gender pairs)."""
from __future__ import annotations

import numpy as np
import pytest

from pipeline.scoring import write_scores
from pipeline.utils.trials import (Trials, TrialsError, random_pairs_trials, read_trials, same_gender_trials,
                                   write_trials)


# ---------------------------------------------------------------- trials files

def test_read_trials_and_write_scores(tmp_path):
    path = tmp_path / "trials"
    path.write_text("id1-a id2-b nontarget\n\nid1-a id1-c target\n")
    trials = read_trials(path)
    assert isinstance(trials, Trials)
    assert trials.enroll.tolist() == ["id1-a", "id1-a"] and trials.test.tolist() == ["id2-b", "id1-c"]
    assert trials.labels.tolist() == [0, 1]
    assert trials.line.tolist() == [1, 3]  # messages name the file's lines
    write_scores(tmp_path / "scores" / "cosine", trials, [0.25, 0.75])
    assert (tmp_path / "scores" / "cosine").read_text() == "id1-a id2-b 0.250000\nid1-a id1-c 0.750000\n"
    write_trials(tmp_path / "copy", trials)
    assert read_trials(tmp_path / "copy").lines() == trials.lines()


@pytest.mark.parametrize("text,line,message", [
    ("a b target\na b\n", 2, "expected 3 fields"),
    ("a b target\na b c target\n", 2, "expected 3 fields"),
    ("a b target\n\na b same\n", 3, "label must be 'target' or 'nontarget', got 'same'"),
])
def test_read_trials_errors_name_file_and_line(tmp_path, text, line, message):
    path = tmp_path / "trials"
    path.write_text(text)
    with pytest.raises(TrialsError, match=f"{path}:{line}: {message}"):
        read_trials(path)


def test_read_trials_empty_file(tmp_path):
    path = tmp_path / "trials"
    path.write_text("\n")
    with pytest.raises(TrialsError, match="no trials"):
        read_trials(path)


def test_unknown_utterances_are_named_with_file_and_line(tmp_path):
    path = tmp_path / "trials"
    path.write_text("a b target\n\na c nontarget\nd b nontarget\n")
    trials = read_trials(path)
    trials.check_known({"a", "b", "c", "d"})
    with pytest.raises(TrialsError, match=f"{path}:3: 'c' is not an utterance of the set \\(2 distinct"):
        trials.check_known({"a", "b"}, "an utterance of the set")


def test_naming_any_of_and_where_select_trials(tmp_path):
    trials = Trials.from_pairs([("a", "b", "target"), ("a", "c", "nontarget"), ("d", "b", "nontarget")])
    assert trials.naming_any_of({"c", "d"}).tolist() == [False, True, True]
    kept = trials.where(~trials.naming_any_of({"c"}))
    assert kept.lines() == ["a b target", "d b nontarget"] and kept.line.tolist() == [1, 3] and kept.num_target == 1


def test_labels_that_disagree_with_utt2spk_are_named_with_file_and_line(tmp_path):
    path = tmp_path / "trials"
    path.write_text("a-1 a-2 target\na-1 b-1 nontarget\n\nb-1 b-2 target\n")
    trials = read_trials(path)
    trials.check_speakers({"a-1": "a", "a-2": "a", "b-1": "b", "b-2": "b"}, "data/x/utt2spk")
    relabelled = {"a-1": "a", "a-2": "a", "b-1": "b", "b-2": "c"}
    with pytest.raises(TrialsError, match=f"{path}:4: 'b-1 b-2 target' disagrees with data/x/utt2spk \\(b-1 is 'b', "
                                          f"b-2 is 'c'; 1 of 3 trials disagree\\): utt2spk changed"):
        trials.check_speakers(relabelled, "data/x/utt2spk")


# ---------------------------------------------------------------- list makers

def _toy_test_set():
    spk2gender = {"a": "m", "b": "m", "c": "f", "d": "f", "e": "m"}
    spk2lang = {"a": "de", "b": "de", "c": "fr", "d": "de", "e": "fr"}
    utt2spk = {f"{s}-{i}": s for s in spk2gender for i in range(10)}
    return utt2spk, spk2gender, spk2lang


def test_trials_o_counts_and_labels():
    utt2spk, _, _ = _toy_test_set()
    lines = random_pairs_trials(utt2spk, 300, 0.1, np.random.default_rng(3)).lines()
    assert len(lines) == len(set(lines)) == 300
    for line in lines:
        a, b, label = line.split()
        assert a != b and label == ("target" if utt2spk[a] == utt2spk[b] else "nontarget")
    assert sum(line.endswith(" target") for line in lines) == 30
    assert random_pairs_trials(utt2spk, 300, 0.1, np.random.default_rng(3)).lines() == lines


def test_trials_h_nontargets_share_gender_and_language_where_possible():
    utt2spk, spk2gender, spk2lang = _toy_test_set()
    lines = same_gender_trials(utt2spk, spk2gender, 200, 0.1, np.random.default_rng(3), spk2group=spk2lang).lines()
    assert len(lines) == 200 and sum(line.endswith(" target") for line in lines) == 20
    for line in lines:
        a, b, label = line.split()
        sa, sb = utt2spk[a], utt2spk[b]
        if label == "nontarget":
            assert sa != sb and spk2gender[sa] == spk2gender[sb]
            # a and b are German men: their impostors are each other; e, the only French man, borrows them.
            if {sa, sb} & {"a", "b"} and "e" not in (sa, sb):
                assert {sa, sb} == {"a", "b"}
