"""VoxCeleb data preparation (local/) on fake corpora laid out exactly as the distributed ones: a few speakers of both
genders, short generated audio, meta CSVs with the official columns and separators, and the cleaned trial lists."""
from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
from click.testing import CliRunner

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "local"))

import make_voxceleb1  # noqa: E402
import make_voxceleb2  # noqa: E402
import voxceleb_common  # noqa: E402
from pipeline.utils.audio import read_wav_scp_entry  # noqa: E402
from pipeline.utils.datadir import DataDir  # noqa: E402

RATE = 16000

# speaker -> (VGGFace name, gender, nationality, set, {youtube id: [(segment, seconds)]}); ids and names are real
# VoxCeleb1 ones, youtube ids include '-', '_' and both cases to exercise C sorting.
VOX1 = {
    "id10001": ("A.J._Buckley", "m", "Ireland", "dev", {"1zcIwhmdeo4": [("00001", 0.30), ("00002", 0.20)],
                                                        "7w0IBEWc9Qw": [("00001", 0.25)]}),
    "id10006": ("Abbie_Cornish", "f", "Australia", "dev", {"Y8hIVOBuels": [("00001", 0.40)],
                                                           "a-B_c9dEf0g": [("00003", 0.20)]}),
    "id10170": ("Cliff_Curtis", "m", "New Zealand", "dev", {"GWXujl-xAVM": [("00001", 0.20), ("00002", 0.35)]}),
    "id10270": ("Eartha_Kitt", "f", "USA", "test", {"x6uYqmx31kE": [("00001", 0.50), ("00002", 0.20)],
                                                    "8jEAjG6SegY": [("00008", 0.30)]}),
    "id10271": ("Ed_Westwick", "m", "UK", "test", {"1gtz-CUIygI": [("00001", 0.20)],
                                                   "37nktPRUJ58": [("00002", 0.25)]}),
}
VOX1_NOT_ON_DISK = ("id10003", "Aamir_Khan", "m", "India", "dev")
VERI_TEST2 = """1 id10270/x6uYqmx31kE/00001.wav id10270/8jEAjG6SegY/00008.wav
0 id10270/x6uYqmx31kE/00001.wav id10271/1gtz-CUIygI/00001.wav
1 id10271/37nktPRUJ58/00002.wav id10271/1gtz-CUIygI/00001.wav
0 id10271/37nktPRUJ58/00002.wav id10270/x6uYqmx31kE/00002.wav
"""
TRIALS_O = """id10270-x6uYqmx31kE-00001 id10270-8jEAjG6SegY-00008 target
id10270-x6uYqmx31kE-00001 id10271-1gtz-CUIygI-00001 nontarget
id10271-37nktPRUJ58-00002 id10271-1gtz-CUIygI-00001 target
id10271-37nktPRUJ58-00002 id10270-x6uYqmx31kE-00002 nontarget
"""
LIST_TEST_ALL2 = """1 id10001/1zcIwhmdeo4/00001.wav id10001/7w0IBEWc9Qw/00001.wav
0 id10001/1zcIwhmdeo4/00002.wav id10006/Y8hIVOBuels/00001.wav
1 id10170/GWXujl-xAVM/00001.wav id10170/GWXujl-xAVM/00002.wav
0 id10270/x6uYqmx31kE/00002.wav id10170/GWXujl-xAVM/00001.wav
"""
LIST_TEST_HARD2 = """1 id10006/Y8hIVOBuels/00001.wav id10006/a-B_c9dEf0g/00003.wav
0 id10001/1zcIwhmdeo4/00001.wav id10170/GWXujl-xAVM/00002.wav
"""
# VoxCeleb2 dev: speaker -> (VGGFace2 id, gender, {youtube id: [(segment, seconds)]}); real ids.
VOX2 = {
    "id00012": ("n000012", "m", {"21Uxsk56VDQ": [("00001", 0.30), ("00002", 0.20)]}),
    "id00022": ("n000022", "f", {"-9rRqaCWOvI": [("00001", 0.25)], "_Hx3b1kAs9E": [("00004", 0.20)]}),
    "id00134": ("n000140", "f", {"ZxmpQ0EHZs8": [("00001", 0.40)]}),
}


def write_wav(path: Path, seconds: float, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    noise = np.random.default_rng(seed).normal(0, 0.1, int(seconds * RATE))
    soundfile.write(path, noise, RATE, subtype="PCM_16")


def make_vox1(root: Path, split_layout: bool = False) -> Path:
    """VoxCeleb1 as its two zips unpack: wav/<spk>/<yt>/<seg>.wav, or dev/wav/... and test/wav/...; meta and the
    cleaned trial lists beside it."""
    for i, (spk, (_, _, _, subset, recs)) in enumerate(VOX1.items()):
        wav_dir = root / subset / "wav" if split_layout else root / "wav"
        for rec, segs in recs.items():
            for j, (seg, seconds) in enumerate(segs):
                write_wav(wav_dir / spk / rec / f"{seg}.wav", seconds, seed=100 * i + j)
    rows = [(spk, name, g, nat, s) for spk, (name, g, nat, s, _) in VOX1.items()] + [VOX1_NOT_ON_DISK]
    meta = "VoxCeleb1 ID\tVGGFace1 ID\tGender\tNationality\tSet\n" + "".join("\t".join(r) + "\n" for r in rows)
    (root / "vox1_meta.csv").write_text(meta)
    (root / "veri_test2.txt").write_text(VERI_TEST2)
    (root / "list_test_all2.txt").write_text(LIST_TEST_ALL2)
    (root / "list_test_hard2.txt").write_text(LIST_TEST_HARD2)
    return root


def write_m4a(path: Path, seconds: float, seed: int) -> None:
    """AAC in MP4 made by ffmpeg where it is installed (ffprobe then reads every file's duration, and drops a file it
    cannot read); elsewhere the bytes of an MP4 header, which nothing here decodes (there is no ffprobe either)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if shutil.which("ffmpeg") is None:
        path.write_bytes(b"\x00\x00\x00\x20ftypM4A ")
        return
    wav = path.with_suffix(".wav")
    write_wav(wav, seconds, seed)
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(wav), "-c:a", "aac", str(path)], check=True)
    wav.unlink()


def make_vox2(root: Path, kind: str = "m4a") -> Path:
    """VoxCeleb2 dev: dev/aac/<spk>/<yt>/<seg>.m4a as distributed (`write_m4a`), or converted to dev/wav/...wav
    ("wav"), or to wav in place under aac/ ("aac-wav", WeSpeaker's m4a2wav.pl)."""
    audio = root / "dev" / ("wav" if kind == "wav" else "aac")
    for i, (spk, (_, _, recs)) in enumerate(VOX2.items()):
        for rec, segs in recs.items():
            for j, (seg, seconds) in enumerate(segs):
                if kind == "m4a":
                    write_m4a(audio / spk / rec / f"{seg}.m4a", seconds, seed=1000 + 100 * i + j)
                else:
                    write_wav(audio / spk / rec / f"{seg}.wav", seconds, seed=1000 + 100 * i + j)
    # The official file: a space before every comma and after the last field, ids not in this tree too.
    rows = "".join(f"{spk} ,{vgg} ,{g} ,dev \n" for spk, (vgg, g, _) in VOX2.items()) + "id00017 ,n000017 ,m ,test \n"
    (root / "vox2_meta.csv").write_text("VoxCeleb2 ID ,VGGFace2 ID ,Gender ,Set \n" + rows)
    return root


def expected_utts(corpus: dict, recs_at: int) -> dict[str, tuple[str, float]]:
    return {f"{spk}-{rec}-{seg}": (spk, seconds) for spk, info in corpus.items()
            for rec, segs in info[recs_at].items() for seg, seconds in segs}


def read_lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


def check_sorted_and_prefixed(data_dir: Path) -> None:
    for name in ("wav.scp", "utt2spk", "spk2utt", "spk2gender"):
        keys = [line.split()[0] for line in read_lines(data_dir / name)]
        assert keys == sorted(keys, key=str.encode), name
    for line in read_lines(data_dir / "utt2spk"):
        utt, spk = line.split()
        assert utt.startswith(spk + "-")


def durations(data: DataDir) -> dict[str, float]:
    return {u: float(d) for u, d in data.table("utt2dur").items()}


def run_cli(command, args: list[str]):
    return CliRunner().invoke(command, [str(a) for a in args])


# ------------------------------------------------------------------------------------------------ VoxCeleb1

@pytest.mark.parametrize("split_layout", [False, True], ids=["wav", "dev-test-wav"])
def test_voxceleb1_data_dir_and_trials(tmp_path, split_layout):
    root = make_vox1(tmp_path / "VoxCeleb1", split_layout)
    result = run_cli(make_voxceleb1.main, ["--root", root, "--out", tmp_path / "data", "--dev"])
    assert result.exit_code == 0, result.output

    out = tmp_path / "data" / "voxceleb1"
    data = DataDir.load(out)
    data.validate(out)
    check_sorted_and_prefixed(out)
    want = expected_utts(VOX1, 4)
    assert data.utt2spk == {u: spk for u, (spk, _) in want.items()}
    assert durations(data) == pytest.approx({u: s for u, (_, s) in want.items()})
    assert data.table("spk2gender") == {spk: info[1] for spk, info in VOX1.items()}
    for utt, path in data.table("wav.scp").items():
        spk, rec, seg = utt[:7], utt[8:-6], utt[-5:]
        assert os.path.isabs(path) and path.endswith(f"wav/{spk}/{rec}/{seg}.wav") and os.path.isfile(path)

    assert (out / "trials_O").read_text() == TRIALS_O
    assert read_lines(out / "trials_E")[3] == "id10270-x6uYqmx31kE-00002 id10170-GWXujl-xAVM-00001 nontarget"
    assert read_lines(out / "trials_H") == ["id10006-Y8hIVOBuels-00001 id10006-a-B_c9dEf0g-00003 target",
                                            "id10001-1zcIwhmdeo4-00001 id10170-GWXujl-xAVM-00002 nontarget"]

    dev = DataDir.load(tmp_path / "data" / "voxceleb1_dev")
    dev.validate(tmp_path / "data" / "voxceleb1_dev")
    assert dev.spks == ["id10001", "id10006", "id10170"]  # the speakers that VoxCeleb1-O does not test
    assert dev.trials == {} and dev.table("spk2gender") == {"id10001": "m", "id10006": "f", "id10170": "m"}


def test_voxceleb1_trial_subset_and_no_utt2dur(tmp_path):
    root = make_vox1(tmp_path / "VoxCeleb1")
    lists = tmp_path / "lists"
    lists.mkdir()
    shutil.move(root / "veri_test2.txt", lists / "veri_test2.txt")
    meta = shutil.move(root / "vox1_meta.csv", tmp_path / "vox1_meta.csv")
    data = make_voxceleb1.prepare_voxceleb1(root, tmp_path / "data", meta=meta, trials_dir=lists,
                                            trial_sets=("O",), utt2dur=False)
    assert set(data.trials) == {"trials_O"} and "utt2dur" not in data.utt_tables
    assert sorted(p.name for p in (tmp_path / "data" / "voxceleb1").glob("trials*")) == ["trials_O"]


def test_voxceleb1_trial_naming_an_unknown_utterance(tmp_path):
    root = make_vox1(tmp_path / "VoxCeleb1")
    with open(root / "list_test_hard2.txt", "a") as handle:
        handle.write("1 id10006/Y8hIVOBuels/00001.wav id10006/Y8hIVOBuels/00099.wav\n")
    result = run_cli(make_voxceleb1.main, ["--root", root, "--out", tmp_path / "data"])
    assert result.exit_code != 0
    assert f"{root / 'list_test_hard2.txt'}:3:" in result.output and "id10006/Y8hIVOBuels/00099.wav" in result.output
    assert "--skip-missing" in result.output
    assert not (tmp_path / "data" / "voxceleb1").exists()  # nothing half written

    data = make_voxceleb1.prepare_voxceleb1(root, tmp_path / "data", skip_missing=True)
    assert len(data.trials["trials_H"]) == 2 and len(data.trials["trials_O"]) == 4


@pytest.mark.parametrize("line, what", [("1 id10270/x6uYqmx31kE/00001.wav", "expected '1|0"),
                                        ("target id10270/x6uYqmx31kE/00001.wav id10270/8jEAjG6SegY/00008.wav",
                                         "expected '1|0"),
                                        ("1 id10270-x6uYqmx31kE-00001 id10270/8jEAjG6SegY/00008.wav",
                                         "is not <speaker>/<youtube-id>/<segment>.wav")])
def test_voxceleb1_malformed_trial_line(tmp_path, line, what):
    root = make_vox1(tmp_path / "VoxCeleb1")
    (root / "veri_test2.txt").write_text(VERI_TEST2 + line + "\n")
    result = run_cli(make_voxceleb1.main, ["--root", root, "--out", tmp_path / "data"])
    assert result.exit_code != 0 and f"{root / 'veri_test2.txt'}:5:" in result.output and what in result.output


def test_voxceleb1_missing_trial_list(tmp_path):
    root = make_vox1(tmp_path / "VoxCeleb1")
    (root / "list_test_all2.txt").unlink()
    result = run_cli(make_voxceleb1.main, ["--root", root, "--out", tmp_path / "data"])
    assert result.exit_code != 0 and f"{root / 'list_test_all2.txt'}: trial list not found" in result.output


def test_voxceleb1_wrong_root(tmp_path):
    root = make_vox1(tmp_path / "VoxCeleb1")
    result = run_cli(make_voxceleb1.main, ["--root", tmp_path, "--out", tmp_path / "data"])
    assert result.exit_code != 0 and f"{tmp_path}: no wav/ folder under it" in result.output
    result = run_cli(make_voxceleb1.main, ["--root", root / "wav", "--out", tmp_path / "data"])
    assert result.exit_code != 0 and "pass its parent as --root" in result.output


def test_voxceleb1_missing_meta(tmp_path):
    root = make_vox1(tmp_path / "VoxCeleb1")
    (root / "vox1_meta.csv").unlink()
    result = run_cli(make_voxceleb1.main, ["--root", root, "--out", tmp_path / "data"])
    assert result.exit_code != 0 and f"{root / 'vox1_meta.csv'}: meta file not found" in result.output


def test_voxceleb1_speaker_without_gender(tmp_path):
    root = make_vox1(tmp_path / "VoxCeleb1")
    meta = root / "vox1_meta.csv"
    meta.write_text("".join(line + "\n" for line in read_lines(meta) if not line.startswith("id10170")))
    result = run_cli(make_voxceleb1.main, ["--root", root, "--out", tmp_path / "data"])
    assert result.exit_code != 0
    assert f"{meta}: no gender for 1 speaker(s) found on disk (id10170)" in result.output


def test_voxceleb1_wrong_meta_file(tmp_path):
    root = make_vox1(tmp_path / "VoxCeleb1")
    make_vox2(tmp_path / "VoxCeleb2")
    result = run_cli(make_voxceleb1.main, ["--root", root, "--meta", tmp_path / "VoxCeleb2" / "vox2_meta.csv",
                                           "--out", tmp_path / "data"])
    assert result.exit_code != 0 and "vox2_meta.csv:1: expected a header with columns 'VoxCeleb1 ID'" in result.output


# ------------------------------------------------------------------------------------------------ meta files

def test_read_meta_formats(tmp_path):
    vox1 = make_vox1(tmp_path / "VoxCeleb1") / "vox1_meta.csv"
    speakers = voxceleb_common.read_meta(vox1, "VoxCeleb1 ID")
    assert speakers["id10170"] == voxceleb_common.Speaker("m", "dev")  # "New Zealand": a space inside a field
    assert speakers["id10270"] == voxceleb_common.Speaker("f", "test") and len(speakers) == 6
    # vox2_meta.csv as published, and the copies in circulation: no spaces, a byte-order mark.
    for text in ("VoxCeleb2 ID ,VGGFace2 ID ,Gender ,Set \nid00134 ,n000140 ,f ,dev \nid00017 ,n000017 ,m ,test \n",
                 "VoxCeleb2ID,VGGFace2ID,Gender,Set\nid00134,n000140,f,dev\nid00017,n000017,m,test\n",
                 "\ufeffVoxCeleb2 ID ,VGGFace2 ID ,Gender ,Set\r\nid00134 ,n000140 ,f ,dev\r\n\r\n"
                 "id00017 ,n000017 ,m ,test\r\n"):
        (tmp_path / "vox2_meta.csv").write_text(text, encoding="utf-8")
        assert voxceleb_common.read_meta(tmp_path / "vox2_meta.csv", "VoxCeleb2 ID") == {
            "id00134": voxceleb_common.Speaker("f", "dev"), "id00017": voxceleb_common.Speaker("m", "test")}


@pytest.mark.parametrize("row, what", [("id00134 ,n000140 ,x ,dev \n", "gender of id00134 is 'x'"),
                                       ("id00134 ,n000140 \n", "expected 4 fields"),
                                       ("id00012 ,n000012 ,m ,dev \n", "speaker id00012 listed twice")])
def test_read_meta_bad_rows(tmp_path, row, what):
    meta = tmp_path / "vox2_meta.csv"
    meta.write_text("VoxCeleb2 ID ,VGGFace2 ID ,Gender ,Set \nid00012 ,n000012 ,m ,dev \n" + row)
    with pytest.raises(voxceleb_common.VoxCelebError, match=f"{meta}:3: {what}"):
        voxceleb_common.read_meta(meta, "VoxCeleb2 ID")


# ------------------------------------------------------------------------------------------------ VoxCeleb2

def test_voxceleb2_m4a_tree_without_ffprobe(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))  # no ffprobe, whatever this machine has
    root = make_vox2(tmp_path / "VoxCeleb2")
    result = run_cli(make_voxceleb2.main, ["--root", root, "--out", tmp_path / "data"])
    assert result.exit_code == 0, result.output

    out = tmp_path / "data" / "voxceleb2_dev"
    data = DataDir.load(out)
    data.validate(out)
    check_sorted_and_prefixed(out)
    want = expected_utts(VOX2, 2)
    assert data.utt2spk == {u: spk for u, (spk, _) in want.items()}
    assert data.table("spk2gender") == {"id00012": "m", "id00022": "f", "id00134": "f"}
    assert "utt2dur" not in data.utt_tables
    aac = root.resolve() / "dev" / "aac"
    assert data.table("wav.scp")["id00022--9rRqaCWOvI-00001"] == (
        f"ffmpeg -v 8 -i {aac}/id00022/-9rRqaCWOvI/00001.m4a -f wav -acodec pcm_s16le -ac 1 -ar 16000 - |")
    assert all(e.startswith("ffmpeg -v 8 -i ") and e.endswith(" - |") for e in data.table("wav.scp").values())


def test_voxceleb2_m4a_durations_from_ffprobe(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "ffprobe"  # prints what `ffprobe -show_entries format=duration -of csv=p=0` prints
    fake.write_text("#!/bin/sh\necho 2.500000\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    data = make_voxceleb2.prepare_voxceleb2(make_vox2(tmp_path / "VoxCeleb2"), tmp_path / "data")
    assert set(data.table("utt2dur").values()) == {"2.5"} and len(data.table("utt2dur")) == 5
    assert "2.5" in (tmp_path / "data" / "voxceleb2_dev" / "utt2dur").read_text()


@pytest.mark.parametrize("kind", ["wav", "aac-wav"])
def test_voxceleb2_converted_to_wav(tmp_path, kind):
    root = make_vox2(tmp_path / "VoxCeleb2", kind)
    if kind == "aac-wav":  # the m4a beside its decoded copy must not be listed twice
        (root / "dev" / "aac" / "id00134" / "ZxmpQ0EHZs8" / "00001.m4a").write_bytes(b"m4a")
    data = make_voxceleb2.prepare_voxceleb2(root, tmp_path / "data")
    want = expected_utts(VOX2, 2)
    assert all(e.endswith(".wav") and os.path.isfile(e) for e in data.table("wav.scp").values())
    assert durations(data) == pytest.approx({u: s for u, (_, s) in want.items()})
    DataDir.load(tmp_path / "data" / "voxceleb2_dev").validate(tmp_path / "data" / "voxceleb2_dev")


def test_voxceleb2_errors(tmp_path):
    root = make_vox2(tmp_path / "VoxCeleb2")
    out = tmp_path / "data"
    result = run_cli(make_voxceleb2.main, ["--root", tmp_path, "--out", out])
    assert result.exit_code != 0 and f"{tmp_path}: no dev/aac/ or dev/wav/ folder under it" in result.output
    result = run_cli(make_voxceleb2.main, ["--root", root / "dev", "--out", out])
    assert result.exit_code != 0 and "pass its parent as --root" in result.output

    meta = root / "vox2_meta.csv"
    result = run_cli(make_voxceleb2.main, ["--root", root, "--meta", tmp_path / "nowhere.csv", "--out", out])
    assert result.exit_code != 0 and f"{tmp_path / 'nowhere.csv'}: meta file not found" in result.output

    meta.write_text("".join(line + "\n" for line in read_lines(meta) if not line.startswith("id00022")))
    result = run_cli(make_voxceleb2.main, ["--root", root, "--out", out])
    assert result.exit_code != 0 and f"{meta}: no gender for 1 speaker(s) found on disk (id00022)" in result.output
    assert not out.exists()


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg not installed")
def test_voxceleb2_real_m4a_decodes_through_the_pipe(tmp_path):
    root = make_vox2(tmp_path / "VoxCeleb2", "wav")
    wav_dir, aac_dir = root / "dev" / "wav", root / "dev" / "aac"
    for wav in wav_dir.rglob("*.wav"):
        m4a = aac_dir / wav.relative_to(wav_dir).with_suffix(".m4a")
        m4a.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["ffmpeg", "-v", "8", "-i", str(wav), "-c:a", "aac", str(m4a)], check=True)
    shutil.rmtree(wav_dir)
    data = make_voxceleb2.prepare_voxceleb2(root, tmp_path / "data", utt2dur=False)
    samples, rate = read_wav_scp_entry(data.table("wav.scp")["id00134-ZxmpQ0EHZs8-00001"])
    assert rate == RATE and abs(len(samples) / RATE - 0.40) < 0.05


# ------------------------------------------------------------------------------------------------ stage 0 script

def test_make_voxceleb_data_sh(tmp_path):
    vox1, vox2 = make_vox1(tmp_path / "VoxCeleb1"), make_vox2(tmp_path / "VoxCeleb2")
    data = tmp_path / "data"
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    cmd = ["bash", str(REPO / "local" / "make_voxceleb_data.sh"), "--nj", "2", str(vox1), str(vox2), str(data)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert (data / "train").is_symlink() and os.readlink(data / "train") == "voxceleb2_dev"
    train = DataDir.load(data / "train")
    assert train.spks == ["id00012", "id00022", "id00134"] and "spk2gender" in train.spk_tables
    test = DataDir.load(data / "voxceleb1")
    assert sorted(test.trials) == ["trials_E", "trials_H", "trials_O"]

    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=REPO)  # done: kept as it is
    assert proc.returncode == 0 and proc.stdout.count("already prepared") == 2, proc.stdout + proc.stderr

    usage = subprocess.run(["bash", cmd[1], str(vox1)], env=env, capture_output=True, text=True)
    assert usage.returncode != 0 and "usage:" in usage.stderr


def test_make_voxceleb_data_sh_as_run_sh_calls_it(tmp_path):
    vox1, vox2 = make_vox1(tmp_path / "VoxCeleb1"), make_vox2(tmp_path / "VoxCeleb2")
    lists = tmp_path / "lists"
    lists.mkdir()
    for name in ("veri_test2.txt", "list_test_all2.txt", "list_test_hard2.txt"):
        (vox1 / name).rename(lists / name)
    config = tmp_path / "voxceleb.yaml"
    config.write_text(f"corpus: voxceleb\nvoxceleb:\n  voxceleb1_root: {vox1}\n  voxceleb2_root: /nowhere\n")
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    cmd = ["bash", str(REPO / "local" / "make_voxceleb_data.sh"), "--config", str(config),
           "-o", f"voxceleb.voxceleb2_root={vox2}", "--nj", "2", str(tmp_path / "data")]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=REPO)
    assert proc.returncode != 0 and f"{vox1 / 'veri_test2.txt'}: trial list not found" in proc.stderr
    proc = subprocess.run(cmd[:6] + ["-o", f"voxceleb.trials_dir={lists}"] + cmd[6:], env=env,
                          capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert DataDir.load(tmp_path / "data" / "train").spks == ["id00012", "id00022", "id00134"]
    assert (tmp_path / "data" / "voxceleb1" / "trials_O").read_text() == TRIALS_O
