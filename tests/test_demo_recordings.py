"""Recorded people of the demo corpus (local/demo/: recorded_speakers, clip_audio, recorded_utterances,
debian_packages): the table, the selection rules on small fake package trees laid out like the real Debian packages,
decoding, utterance making and the package cache. No network, no real packages; a few seconds of synthetic voiced
audio per tree."""
from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
import logging
import os
import shutil
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from local.demo import clip_audio, debian_packages, recorded_speakers, recorded_utterances  # noqa: E402

SPANDSP = ctypes.util.find_library("spandsp")
needs_spandsp = pytest.mark.skipif(SPANDSP is None, reason="libspandsp (Debian libspandsp2) encodes the fake G.722")
needs_dpkg_deb = pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="dpkg-deb builds the fake packages")

FILLETS = "usr/share/games/fillets-ng"
STAMPS = "usr/share/tuxpaint/stamps"
ADDONS = "usr/share/games/uqm/content/addons"
SOUNDS = "usr/share/asterisk/sounds"


# ------------------------------------------------------------------------------------------------------------------
# Synthetic speech and fake package trees
# ------------------------------------------------------------------------------------------------------------------
def voiced(seconds: float, seed: int, rate: int = 16000, f0: float = 140.0, edge_s: float = 0.2) -> np.ndarray:
    """Harmonic 'speech' with a 4 Hz syllable rhythm (quiet dips to cut at) between `edge_s` of silence."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    f = f0 * rng.uniform(0.8, 1.25) * (1 + 0.05 * np.sin(2 * np.pi * 0.7 * t + rng.uniform(0, 6)))
    phase = 2 * np.pi * np.cumsum(f) / rate
    x = sum(np.sin(k * phase) / k for k in range(1, 12)) * (0.5 - 0.5 * np.cos(2 * np.pi * 4 * t)) ** 2
    edge = np.zeros(int(edge_s * rate))
    return np.concatenate([edge, 0.5 * x / np.max(np.abs(x)), edge])


def write_ogg(path: Path, seconds: float, seed: int, rate: int = 22050, channels: int = 1) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    x = voiced(seconds, seed, rate)
    soundfile.write(str(path), np.stack([x] * channels, axis=1) if channels > 1 else x, rate,
                    format="OGG", subtype="VORBIS")


def g722_encode(samples: np.ndarray) -> bytes:
    """16 kHz float samples -> raw 64 kbit/s G.722, with libspandsp's encoder."""
    lib = ctypes.CDLL(SPANDSP)
    lib.g722_encode_init.restype = ctypes.c_void_p
    lib.g722_encode_init.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int]
    lib.g722_encode.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_int16), ctypes.c_int]
    lib.g722_encode_free.argtypes = [ctypes.c_void_p]
    pcm = np.round(samples * 32767).astype(np.int16)
    out = ctypes.create_string_buffer(len(pcm))
    state = lib.g722_encode_init(None, 64000, 0)
    n = lib.g722_encode(state, out, pcm.ctypes.data_as(ctypes.POINTER(ctypes.c_int16)), len(pcm))
    lib.g722_encode_free(state)
    return out.raw[:n]


def write_g722(path: Path, seconds: float, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(g722_encode(voiced(seconds, seed, 16000)) if seconds else b"")


def make_trees(base: Path) -> dict[str, Path]:
    """One directory per fake package, each as `dpkg -x` (and the .uqm unzip) leaves the real one."""
    roots = {name: base / name for name in ("fillets-ng-data", "fillets-ng-data-cs", "tuxpaint-stamps-default",
                                            "uqm-voice", "asterisk-core-sounds-en-g722",
                                            "asterisk-core-sounds-es-g722")}
    for root in roots.values():
        root.mkdir(parents=True)
    # Fillets: labels come from the English scripts, never from the -m-/-v- tags of the file names.
    scripts = roots["fillets-ng-data"] / FILLETS / "script"
    (scripts / "city").mkdir(parents=True)
    (scripts / "city" / "dialogs_en.lua").write_text(
        'dialogId("vit-m-hlava", "font_small", "Head.")\n'
        'dialogId("help11", "font_small", "No tag in the name.")\n'
        'dialogId("vit-m-odd", "font_big", "Tagged m, spoken by the big fish.")\n'
        'dialogId("vit-v-proc", "font_big", "Why?")\n'
        'dialogId("rand-1-0", "font_small", "Said by either.")\n'
        'dialogId("vit-hs-klid1", "font_statue", "Citizens, please remain calm.")\n'
        'dialogId("vit-m-dup", "font_small", "A byte copy of vit-m-hlava.")\n')
    (scripts / "city" / "dialogs_cs.lua").write_text('dialogId("vit-m-odd", "font_small", "Ignored: not English.")\n')
    (scripts / "share").mkdir()
    (scripts / "share" / "black_dialogs_en.lua").write_text('dialogId("smrt-m-0", "font_small", "So much for him.")\n'
                                                           'dialogId("rand-1-0", "font_big", "Said by either.")\n')
    sound = roots["fillets-ng-data-cs"] / FILLETS / "sound"
    for i, name in enumerate(("vit-m-hlava", "help11", "vit-m-odd", "vit-v-proc", "rand-1-0", "vit-hs-klid1")):
        write_ogg(sound / "city" / "cs" / f"{name}.ogg", 1.5 + 0.3 * i, seed=i)
    shutil.copy(sound / "city" / "cs" / "vit-m-hlava.ogg", sound / "city" / "cs" / "vit-m-dup.ogg")
    write_ogg(sound / "share" / "blackjokes" / "cs" / "smrt-m-0.ogg", 2.0, seed=10)
    # Tux Paint: <stamp>_desc_<lang>.ogg at 44.1 kHz stereo; French restricted to its main reader's folders.
    stamps = roots["tuxpaint-stamps-default"] / STAMPS
    for i, rel in enumerate(("vehicles/car_desc_fr.ogg", "food/fruit/apple_desc_fr.ogg", "food/pear_desc_fr.ogg",
                             "animals/cat_desc_fr.ogg", "symbols/alphabets/a_desc_fr.ogg",
                             "symbols/math/one_desc_fr.ogg", "food/pear_desc_es.ogg", "food/pear_desc.ogg",
                             "food/pear_desc_fr_CA.ogg")):
        write_ogg(stamps / rel, 0.8 + 0.1 * i, seed=20 + i, rate=44100, channels=2)
    shutil.copy(stamps / "vehicles/car_desc_fr.ogg", stamps / "vehicles/car-1_desc_fr.ogg")
    soundfile.write(str(stamps / "food/crumb_desc_fr.ogg"), np.full(50, 0.1), 44100, format="OGG", subtype="VORBIS")
    # UQM: the voices are a zip (*.uqm) that fetch_packages unpacks beside itself.
    addon = roots["uqm-voice"] / ADDONS / "uqm-0.8.0-voice.uqm"
    addon.parent.mkdir(parents=True)
    with zipfile.ZipFile(addon, "w") as zf:
        for folder, n, seconds in (("melnorme", 2, 12.0), ("probe", 1, 0.6)):
            for k in range(1, n + 1):
                clip = base / "uqm-tmp" / f"{folder}-{k:03d}.ogg"
                write_ogg(clip, seconds, seed=40 + k + len(folder), rate=11025)
                zf.write(clip, f"3dovoice/{folder}/{folder}-{k:03d}.ogg")
        zf.writestr("3dovoice/melnorme/melnorme.txt", "#(HELLO)\tmelnorme-001.ogg\nHello.\n")
    # Asterisk: G.722 prompts, silence/ and an empty file to drop; Allison speaks in two packages.
    if SPANDSP:
        allison_en = roots["asterisk-core-sounds-en-g722"] / SOUNDS / "en_US_f_Allison"
        for i, (rel, seconds) in enumerate((("vm-hello.g722", 1.2), ("digits/1.g722", 0.6), ("letters/a.g722", 0.7),
                                            ("vm-goodbye.g722", 1.4), ("is.g722", 0.0))):
            write_g722(allison_en / rel, seconds, seed=60 + i)
        (allison_en / "silence").mkdir()
        (allison_en / "silence" / "1.g722").write_bytes(g722_encode(np.zeros(16000)))
        allison_es = roots["asterisk-core-sounds-es-g722"] / SOUNDS / "es_MX_f_Allison"
        for i, (rel, seconds) in enumerate((("vm-hola.g722", 1.3), ("digits/1.g722", 0.5), ("vm-adios.g722", 1.1))):
            write_g722(allison_es / rel, seconds, seed=70 + i)
    shutil.rmtree(base / "uqm-tmp")
    return roots


@pytest.fixture(scope="module")
def package_trees(tmp_path_factory) -> dict[str, Path]:
    """The fake packages as their own trees (input of the .deb builds) ..."""
    return make_trees(tmp_path_factory.mktemp("trees"))


@pytest.fixture(scope="module")
def roots(package_trees, tmp_path_factory) -> dict[str, Path]:
    """... and as fetch_packages leaves them: a copy with each UQM zip (*.uqm) unpacked beside itself, under its name
    without .uqm (test_fetch_downloads_unpacks_and_reports_what_apt_lacks checks that fetch_packages does so)."""
    base = tmp_path_factory.mktemp("roots")
    out = {}
    for name, tree in package_trees.items():
        shutil.copytree(tree, base / name)
        for addon in sorted((base / name).rglob("*.uqm")):
            with zipfile.ZipFile(addon) as zf:
                zf.extractall(addon.with_suffix(""))
        out[name] = base / name
    return out


def speaker(id: str, select: str, packages: str, language: str = "cs", gender: str = "f") -> recorded_speakers.RecordedSpeaker:
    languages = tuple(language.split(","))
    return recorded_speakers.RecordedSpeaker(id, gender, languages[0], tuple(packages.split(",")), select, "GPL-2", "", languages)


FIL_SMALL = speaker("fil-cs-m", "fillets lang=cs font=font_small", "fillets-ng-data-cs,fillets-ng-data")
FIL_BIG = speaker("fil-cs-v", "fillets lang=cs font=font_big", "fillets-ng-data-cs,fillets-ng-data", gender="m")
TUX_FR = speaker("tux-fr", "tuxpaint lang=fr exclude=animals,symbols/alphabets,symbols/math",
                 "tuxpaint-stamps-default", "fr", "m")
UQM_ZEE = speaker("uqm-zee", "uqm folders=melnorme", "uqm-voice", "en", "m")
ALLISON = speaker("ast-allison", "asterisk folders=en_US_f_Allison,es_MX_f_Allison",
                  "asterisk-core-sounds-en-g722,asterisk-core-sounds-es-g722", "en,es")


def names(clips: list[Path]) -> list[str]:
    return [p.name for p in clips]


# ------------------------------------------------------------------------------------------------------------------
# The table
# ------------------------------------------------------------------------------------------------------------------
def test_table_has_each_recorded_person_in_one_row():
    table = recorded_speakers.read_recording_table()
    ids = [s.id for s in table]
    assert len(ids) == len(set(ids))
    assert {s.gender for s in table} == {"m", "f"}
    assert {"fil-cs-m", "tux-es", "tux-fr", "uqm-leyland", "ast-allison", "ast-ivrru"} <= set(ids)
    allison = next(s for s in table if s.id == "ast-allison")
    assert set(allison.packages) == {"asterisk-core-sounds-en-g722", "asterisk-core-sounds-es-g722"}
    assert allison.languages == ("en", "es") and allison.language == "en"
    # No folder, (language, character) or reader is claimed by two rows, and the people left out stay out.
    claims = []
    for s in table:
        kind, args = recorded_speakers.parse_select(s.select)
        if kind in ("uqm", "asterisk"):
            claims += [(kind, folder) for folder in args["folders"].split(",")]
        else:
            claims.append((kind, args["lang"], args.get("font")))
        assert s.licence and s.note, s.id
    assert len(claims) == len(set(claims))
    assert not {("uqm", f) for f in ("probe", "zoqfotpik", "safeones", "chmmr")} & set(claims)
    assert not any(s.id in ("ast-menardi", "ast-armelle", "ast-july") for s in table)
    assert next(s for s in table if s.id == "tux-fr").select.endswith("exclude=animals,symbols/alphabets,symbols/math")


@pytest.mark.parametrize("cells, message", [
    ("x-1\tq\tcs\tpkg\tuqm folders=a\tGPL\tn", "gender must be m or f"),
    ("x-1\tm\tcz-CZ\tpkg\tuqm folders=a\tGPL\tn", "ISO 639-1"),
    ("x-1\tm\tcs\tpkg\tmagic folders=a\tGPL\tn", "kind must be one of"),
    ("x-1\tm\tcs\tpkg\tuqm lang=cs\tGPL\tn", "uqm takes folders="),
    ("x-1\tm\tcs\tpkg\tuqm folders=a", "cells"),
    ("x-0\tm\tcs\tpkg\tuqm folders=a\tGPL\tn", "already on line 3"),
])
def test_table_errors_name_the_file_and_line(tmp_path, cells, message):
    path = tmp_path / "table.tsv"
    path.write_text("# comment\n" + "\t".join(recorded_speakers.TABLE_COLUMNS) + "\nx-0\tm\tcs\tpkg\tuqm folders=a\tGPL\tn\n"
                    + cells + "\n")
    with pytest.raises(recorded_speakers.RecordingError, match=f"{path}:4: .*{message}"):
        recorded_speakers.read_recording_table(path)


# ------------------------------------------------------------------------------------------------------------------
# Selection rules
# ------------------------------------------------------------------------------------------------------------------
def test_fillets_characters_come_from_the_english_scripts(roots):
    # help11 has no tag, vit-m-odd has the small fish's tag but the big fish's font; rand-* is said in both fonts;
    # vit-m-dup and vit-m-hlava are byte-identical (the first in path order stays); smrt-m-0 is labelled in
    # script/share/.
    assert names(recorded_speakers.speaker_clips(FIL_SMALL, roots)) == ["help11.ogg", "vit-m-dup.ogg", "smrt-m-0.ogg"]
    assert names(recorded_speakers.speaker_clips(FIL_BIG, roots)) == ["vit-m-odd.ogg", "vit-v-proc.ogg"]


def test_fillets_without_the_scripts_package_is_an_error(roots):
    only_voice = {"fillets-ng-data-cs": roots["fillets-ng-data-cs"], "fillets-ng-data": roots["fillets-ng-data-cs"]}
    with pytest.raises(recorded_speakers.RecordingError, match="add fillets-ng-data"):
        recorded_speakers.speaker_clips(FIL_SMALL, only_voice)
    with pytest.raises(recorded_speakers.RecordingError, match="fillets-ng-data not fetched"):
        recorded_speakers.speaker_clips(FIL_SMALL, {"fillets-ng-data-cs": roots["fillets-ng-data-cs"]})


def test_tuxpaint_keeps_one_language_outside_the_excluded_folders(roots):
    clips = recorded_speakers.speaker_clips(TUX_FR, roots)
    rel = [p.relative_to(roots["tuxpaint-stamps-default"] / STAMPS).as_posix() for p in clips]
    # car-1 and car are byte-identical (the first in path order stays); fr_CA, es and the English file are other
    # readers.
    assert rel == ["food/crumb_desc_fr.ogg", "food/fruit/apple_desc_fr.ogg", "food/pear_desc_fr.ogg",
                   "vehicles/car-1_desc_fr.ogg"]
    everything = speaker("tux-fr", "tuxpaint lang=fr", "tuxpaint-stamps-default", "fr", "m")
    assert len(recorded_speakers.speaker_clips(everything, roots)) == 7


def test_uqm_reads_the_unzipped_voice_addon(roots):
    assert names(recorded_speakers.speaker_clips(UQM_ZEE, roots)) == ["melnorme-001.ogg", "melnorme-002.ogg"]


def test_a_rule_that_finds_nothing_is_an_error(roots):
    nobody = speaker("uqm-nobody", "uqm folders=orz", "uqm-voice", "en", "m")
    with pytest.raises(recorded_speakers.RecordingError, match="uqm-nobody: select rule 'uqm folders=orz' finds no clip"):
        recorded_speakers.speaker_clips(nobody, roots)


@needs_spandsp
def test_asterisk_drops_silence_and_empty_prompts(roots):
    clips = recorded_speakers.speaker_clips(ALLISON, roots)
    rel = [p.as_posix().split(f"/{SOUNDS}/")[1] for p in clips]
    # In (package, path) order; silence/ and the empty is.g722 are gone.
    assert rel == ["en_US_f_Allison/digits/1.g722", "en_US_f_Allison/letters/a.g722", "en_US_f_Allison/vm-goodbye.g722",
                   "en_US_f_Allison/vm-hello.g722", "es_MX_f_Allison/digits/1.g722", "es_MX_f_Allison/vm-adios.g722",
                   "es_MX_f_Allison/vm-hola.g722"]
    expected = sum(p.stat().st_size for p in clips) / 8000
    assert clip_audio.available_seconds(ALLISON, roots) == pytest.approx(expected)


# ------------------------------------------------------------------------------------------------------------------
# Decoding
# ------------------------------------------------------------------------------------------------------------------
def test_decode_ogg_mixes_stereo_down(roots):
    path = roots["tuxpaint-stamps-default"] / STAMPS / "vehicles/car_desc_fr.ogg"
    audio, rate = clip_audio.decode_clip(path)
    assert rate == 44100 and audio.ndim == 1 and np.max(np.abs(audio)) <= 1.0
    assert len(audio) == soundfile.info(str(path)).frames
    assert clip_audio.available_seconds(UQM_ZEE, roots) == pytest.approx(24.8, abs=0.01)


@needs_spandsp
def test_decode_g722_gives_back_the_encoded_speech(tmp_path):
    original = voiced(1.0, seed=3, edge_s=0.0)
    path = tmp_path / "x.g722"
    path.write_bytes(g722_encode(original))
    audio, rate = clip_audio.decode_clip(path)
    assert rate == 16000 and len(audio) == len(original)
    # G.722's QMF filters delay the signal by 22 samples; the rest is coding noise.
    assert np.corrcoef(audio[22:], original[:-22])[0, 1] > 0.98


# ------------------------------------------------------------------------------------------------------------------
# Utterances
# ------------------------------------------------------------------------------------------------------------------
def job(spk, roots, out, n_utts=6, seed=0, min_dur=2.0, max_dur=4.0):
    return recorded_utterances.recorded_speaker_job(spk, {k: str(v) for k, v in roots.items()}, n_utts, seed, min_dur, max_dur, str(out))


def check_utterances(results, spk, min_dur, max_dur):
    for index, r in enumerate(results):
        info = soundfile.info(r["wav"])
        assert r["utt"] == f"{spk.id}-{index + 1:04d}" and r["speaker"] == spk.id
        assert Path(r["wav"]) == Path(r["wav"]).parent.parent / spk.id / f"{r['utt']}.wav"
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
        assert min_dur <= info.frames / 16000 <= max_dur and r["seconds"] == info.frames / 16000
        clips = r["clips"].split(",")
        assert len(clips) == len(set(clips)), "a clip twice in one utterance"
        assert np.max(np.abs(soundfile.read(r["wav"])[0])) <= recorded_utterances.PEAK_LIMIT + 1e-4


def test_short_clips_are_joined_each_used_once(roots, tmp_path):
    results = job(TUX_FR, roots, tmp_path, n_utts=5, min_dur=2.0, max_dur=3.0)
    check_utterances(results, TUX_FR, 2.0, 3.0)
    used = [c for r in results for c in r["clips"].split(",")]
    assert len(used) == len(set(used)), "a clip in two utterances"
    assert all(c.startswith(STAMPS) for c in used)
    # Three word clips of about a second make one utterance of 2-3 s, not five: nothing is used twice. The 1 ms
    # crumb is too short to be a word.
    assert len(results) == 1 and len(used) >= 2


def test_fewer_utterances_rather_than_reuse_is_logged(roots, tmp_path):
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logging.getLogger("demo_recordings").addHandler(handler)
    try:
        results = job(FIL_SMALL, roots, tmp_path, n_utts=10, min_dur=2.0, max_dur=3.0)
    finally:
        logging.getLogger("demo_recordings").removeHandler(handler)
    check_utterances(results, FIL_SMALL, 2.0, 3.0)
    assert 1 <= len(results) < 10
    assert any(f"only {len(results)} of 10 utterances" in r.getMessage() for r in records)


def test_long_clips_are_cut_without_using_speech_twice(roots, tmp_path):
    results = job(UQM_ZEE, roots, tmp_path, n_utts=50, min_dur=2.0, max_dur=3.0)
    check_utterances(results, UQM_ZEE, 2.0, 3.0)
    # 2 x 12 s of speech: about nine utterances of 2-3 s, then it is used up.
    assert 6 <= len(results) <= 12
    used = {c for r in results for c in r["clips"].split(",")}
    assert used == {f"{ADDONS}/uqm-0.8.0-voice/3dovoice/melnorme/melnorme-00{k}.ogg" for k in (1, 2)}
    speech = sum(np.count_nonzero(np.abs(soundfile.read(r["wav"])[0]) > 1e-3) for r in results) / 16000
    assert speech <= 24.0


@needs_spandsp
def test_two_languages_never_meet_in_one_utterance(roots, tmp_path):
    results = job(ALLISON, roots, tmp_path, n_utts=4, min_dur=2.0, max_dur=3.5)
    check_utterances(results, ALLISON, 2.0, 3.5)
    assert results
    for r in results:
        folders = {c.split("/")[4] for c in r["clips"].split(",")}
        assert folders == {"en_US_f_Allison" if r["language"] == "en" else "es_MX_f_Allison"}
        assert "silence" not in r["clips"]


def wav_digests(results) -> list[str]:
    return [hashlib.sha1(Path(r["wav"]).read_bytes()).hexdigest() for r in results]


def test_utterances_are_deterministic_in_any_process(roots, tmp_path):
    first = job(TUX_FR, roots, tmp_path / "a", min_dur=1.0, max_dur=2.0, seed=3)
    again = job(TUX_FR, roots, tmp_path / "b", min_dur=1.0, max_dur=2.0, seed=3)
    other = job(TUX_FR, roots, tmp_path / "c", min_dur=1.0, max_dur=2.0, seed=4)
    assert [r["clips"] for r in first] == [r["clips"] for r in again]
    assert wav_digests(first) == wav_digests(again) != wav_digests(other)
    code = ("import sys; from local.demo.recorded_utterances import recorded_speaker_job\n"
            "from test_demo_recordings import TUX_FR\n"
            "roots = {'tuxpaint-stamps-default': sys.argv[1]}\n"
            "recorded_speaker_job(TUX_FR, roots, 6, 3, 1.0, 2.0, sys.argv[2])\n")
    env = dict(os.environ, PYTHONHASHSEED="123",
               PYTHONPATH=os.pathsep.join([str(REPO), str(REPO / "tests")]))
    subprocess.run([sys.executable, "-c", code, str(roots["tuxpaint-stamps-default"]), str(tmp_path / "d")],
                   check=True, env=env)
    elsewhere = [dict(wav=str(tmp_path / "d" / "tux-fr" / f"{r['utt']}.wav")) for r in first]
    assert wav_digests(elsewhere) == wav_digests(first)


def test_bad_durations_are_refused(roots, tmp_path):
    with pytest.raises(ValueError, match="min_dur"):
        job(TUX_FR, roots, tmp_path, min_dur=3.0, max_dur=2.0)


# ------------------------------------------------------------------------------------------------------------------
# The package cache
# ------------------------------------------------------------------------------------------------------------------
def executable(path: Path, text: str) -> str:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


@pytest.fixture(scope="module")
def fake_debs(package_trees, tmp_path_factory) -> Path:
    """Real .deb files of the fake trees (dpkg-deb --build), as an apt archive would hand them out."""
    if shutil.which("dpkg-deb") is None:
        pytest.skip("dpkg-deb builds the fake packages")
    out = tmp_path_factory.mktemp("debs")
    for name in ("fillets-ng-data-cs", "uqm-voice"):
        build = tmp_path_factory.mktemp(f"build-{name}")
        shutil.copytree(package_trees[name], build, dirs_exist_ok=True)
        (build / "DEBIAN").mkdir()
        (build / "DEBIAN" / "control").write_text(
            f"Package: {name}\nVersion: 1.0-1\nArchitecture: all\nMaintainer: Test <t@example.org>\n"
            f"Description: fake {name}\n")
        subprocess.run(["dpkg-deb", "-Zgzip", "--root-owner-group", "--build", str(build),
                        str(out / f"{name}_1.0-1_all.deb")], check=True, capture_output=True)
    return out


@pytest.fixture
def fake_apt_get(fake_debs, tmp_path) -> tuple[str, Path]:
    """An `apt-get` that serves the fake .debs for `download` (logging each request) and knows nothing else."""
    calls = tmp_path / "apt-calls"
    script = executable(tmp_path / "apt-get", f"""#!/bin/sh
[ "$1" = download ] || exit 100
echo "$2" >> {calls}
for deb in {fake_debs}/"$2"_*.deb; do
  [ -e "$deb" ] && cp "$deb" . && exit 0
done
echo "E: Unable to locate package $2" >&2
exit 100
""")
    return script, calls


LOG = logging.getLogger("test_demo_recordings")


def test_fetch_without_apt_reports_every_package(tmp_path):
    roots, missing = debian_packages.fetch_packages(["uqm-voice", "tuxpaint-stamps-default"], tmp_path, LOG,
                                       apt_get=str(tmp_path / "no-apt-get"))
    assert roots == {} and list(missing) == ["uqm-voice", "tuxpaint-stamps-default"]
    assert "cannot run" in missing["uqm-voice"] and not list((tmp_path / "debs").iterdir())


@needs_dpkg_deb
def test_fetch_downloads_unpacks_and_reports_what_apt_lacks(fake_apt_get, tmp_path, monkeypatch):
    apt_get, calls = fake_apt_get
    monkeypatch.setenv(debian_packages.APT_GET_ENV, apt_get)   # the override the build passes on
    cache = tmp_path / "cache"
    roots, missing = debian_packages.fetch_packages(["uqm-voice", "no-such-package", "uqm-voice"], cache, LOG)
    assert list(roots) == ["uqm-voice"] and roots["uqm-voice"] == cache / "root" / "uqm-voice"
    assert list(missing) == ["no-such-package"] and "Unable to locate package" in missing["no-such-package"]
    assert names(recorded_speakers.speaker_clips(UQM_ZEE, roots)) == ["melnorme-001.ogg", "melnorme-002.ogg"]
    assert [p.name for p in (cache / "debs").iterdir()] == ["uqm-voice_1.0-1_all.deb"]
    # A second run finds everything in the cache: apt-get is asked only about what is still missing.
    calls.unlink()
    again, _ = debian_packages.fetch_packages(["uqm-voice", "no-such-package"], cache, LOG, dpkg="false")
    assert again == roots and calls.read_text().split() == ["no-such-package"]


@needs_dpkg_deb
def test_crash_while_unpacking_leaves_nothing_that_looks_complete(fake_apt_get, tmp_path):
    apt_get, _ = fake_apt_get
    cache = tmp_path / "cache"
    # A dpkg that unpacks part of the tree, then kills the Python process that runs it.
    dying_dpkg = executable(tmp_path / "dpkg", """#!/bin/sh
mkdir -p "$3/usr/share/games/fillets-ng/sound/city/cs"
echo half > "$3/usr/share/games/fillets-ng/sound/city/cs/vit-m-hlava.ogg"
kill -9 $PPID
sleep 5
""")
    code = ("import logging, sys; from local.demo.debian_packages import fetch_packages\n"
            "fetch_packages(['fillets-ng-data-cs'], sys.argv[1], logging.getLogger(), apt_get=sys.argv[2], "
            "dpkg=sys.argv[3])\n")
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, "-c", code, str(cache), apt_get, dying_dpkg], env=env,
                          capture_output=True)
    assert proc.returncode == -9
    assert not (cache / "root" / "fillets-ng-data-cs").exists()
    assert not list((cache / "root").rglob(debian_packages.EXTRACTED_MARKER))
    # A dpkg that fails is reported; the next good run removes the half tree and unpacks the whole package.
    _, missing = debian_packages.fetch_packages(["fillets-ng-data-cs"], cache, LOG, apt_get=apt_get, dpkg="false")
    assert "dpkg -x" in missing["fillets-ng-data-cs"]
    roots, missing = debian_packages.fetch_packages(["fillets-ng-data-cs"], cache, LOG, apt_get=apt_get)
    assert not missing and sorted(p.name for p in (cache / "root").iterdir()) == ["fillets-ng-data-cs"]
    unpacked = roots["fillets-ng-data-cs"] / FILLETS / "sound" / "city" / "cs" / "vit-m-hlava.ogg"
    assert soundfile.info(str(unpacked)).frames > 0
    assert len(list(roots["fillets-ng-data-cs"].rglob("*.ogg"))) == 8
