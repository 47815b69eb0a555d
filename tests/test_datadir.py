"""Kaldi data dirs: round trips, validation errors naming file and line, fix, split, subset, combine."""
from pathlib import Path

import pytest

from pipeline.utils.datadir import DataDir, DataDirError, read_table, write_table
from pipeline.utils.trials import Trials


def make_dir(tmp_path: Path, n_spk: int = 4, n_utt: int = 3, with_files: bool = True) -> Path:
    d = tmp_path / "data"
    d.mkdir()
    utt2spk, wav, gender = {}, {}, {}
    for s in range(n_spk):
        spk = f"spk{s}"
        gender[spk] = "m" if s % 2 else "f"
        for u in range(n_utt + s):  # uneven counts, to exercise balanced splitting
            utt = f"{spk}-utt{u:02d}"
            utt2spk[utt] = spk
            path = tmp_path / f"{utt}.wav"
            if with_files:
                path.write_bytes(b"")
            wav[utt] = str(path)
    DataDir({"utt2spk": utt2spk, "wav.scp": wav}, {"spk2gender": gender},
            {"trials": Trials.from_pairs([("spk0-utt00", "spk1-utt00", "nontarget"),
                                          ("spk0-utt00", "spk0-utt01", "target")])}).save(d)
    return d


def test_round_trip_and_spk2utt(tmp_path):
    d = make_dir(tmp_path)
    data = DataDir.load(d)
    data.validate(d)
    assert (d / "spk2utt").read_text().splitlines()[0] == "spk0 spk0-utt00 spk0-utt01 spk0-utt02"
    assert data.summary()["speakers_per_gender"] == {"f": 2, "m": 2}
    data.save(tmp_path / "copy")
    assert DataDir.load(tmp_path / "copy").utt_tables == data.utt_tables


def test_unsorted_table_names_file_and_line(tmp_path):
    d = make_dir(tmp_path)
    lines = (d / "utt2spk").read_text().splitlines()
    lines[1], lines[2] = lines[2], lines[1]
    (d / "utt2spk").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataDirError, match=r"utt2spk:3: .*not sorted"):
        DataDir.load(d)


def test_duplicate_and_malformed_lines(tmp_path):
    p = tmp_path / "t"
    p.write_text("a 1\na 2\n")
    with pytest.raises(DataDirError, match=r"t:2: duplicate key 'a'"):
        read_table(p)
    p.write_text("a 1\nb\n")
    with pytest.raises(DataDirError, match=r"t:2: expected"):
        read_table(p)


def test_inconsistent_tables_and_missing_audio(tmp_path):
    d = make_dir(tmp_path)
    wav = read_table(d / "wav.scp")
    missing_utt = next(iter(wav))
    Path(wav[missing_utt]).unlink()
    with pytest.raises(DataDirError, match=f"audio of '{missing_utt}' not found"):
        DataDir.load(d).validate(d)
    del wav[missing_utt]
    write_table(d / "wav.scp", wav)
    with pytest.raises(DataDirError, match="wav.scp: 1 utterances missing"):
        DataDir.load(d).validate(d)
    fixed, dropped = DataDir.load(d).fixed()
    assert dropped == 1 and missing_utt not in fixed.utt2spk
    fixed.validate(d)


def test_speaker_prefix_gender_and_trials_checks(tmp_path):
    d = make_dir(tmp_path)
    data = DataDir.load(d)
    data.spk_tables["spk2gender"]["spk1"] = "x"
    with pytest.raises(DataDirError, match="spk2gender: gender of 'spk1' is 'x'"):
        data.validate(d)
    (d / "trials").write_text((d / "trials").read_text() + "spk0-utt00 nobody-utt nontarget\n")
    data = DataDir.load(d)
    with pytest.raises(DataDirError, match=r"trials:3: 'nobody-utt' is not an utterance of .*utt2spk"):
        data.validate(d)
    data = DataDir({"utt2spk": {"a-1": "b"}})
    with pytest.raises(DataDirError, match="does not start with its speaker id"):
        data.validate(d)


def test_split_keeps_speakers_whole_and_balanced(tmp_path):
    data = DataDir.load(make_dir(tmp_path, n_spk=6))
    parts = data.split(3)
    assert len(parts) == 3
    spk_sets = [set(p.spks) for p in parts]
    assert set().union(*spk_sets) == set(data.spks)
    assert sum(len(s) for s in spk_sets) == len(data.spks)  # disjoint
    sizes = [len(p.utts) for p in parts]
    assert max(sizes) - min(sizes) <= 8
    assert DataDir.combine(parts).utt2spk == data.utt2spk
    with pytest.raises(DataDirError, match="cannot split 6 speakers into 7 jobs"):
        data.split(7)


def test_subset_filters_trials(tmp_path):
    data = DataDir.load(make_dir(tmp_path))
    sub = data.subset_speakers(["spk0"])
    assert sub.spks == ["spk0"]
    assert sub.trials["trials"].lines() == ["spk0-utt00 spk0-utt01 target"]
    assert list(sub.spk_tables["spk2gender"]) == ["spk0"]
