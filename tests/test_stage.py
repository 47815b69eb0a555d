"""Done markers and their content check: an archive whose bytes changed with its modification time put back (as
`touch -r` after an edit leaves it) passes the size/time check but not `verify_contents`, `validate`, or a reader
under GMM_RESNEXT_VERIFY_INPUTS."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pipeline.utils.archive import ArchiveWriter, load, read_scp
from pipeline.utils.checksums import VERIFY_INPUTS_ENV
from pipeline.utils.stage import StageError, is_done, mark_done, output_key, verify_contents

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def lgp_dir(tmp_path: Path) -> Path:
    """A data dir with one real archive (two utterances) marked done by stage 3."""
    directory = tmp_path / "data" / "test_lgp_gi"
    directory.mkdir(parents=True)
    with ArchiveWriter(directory / "lgp") as writer:
        for key in ("spk1-utt1", "spk1-utt2"):
            writer.write(key, np.arange(40, dtype=np.float32).reshape(10, 4))
    mark_done(directory, "lgp", "key", [directory / "lgp.ark", directory / "lgp.scp"])
    return directory


def flip_byte_keeping_mtime(path: Path) -> None:
    """Change the last byte (a float of the last matrix), then put the modification time back."""
    before = path.stat()
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01
    path.write_bytes(bytes(data))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))


def validate(*paths: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipeline", "validate", *map(str, paths)], cwd=REPO,
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(REPO)})


def test_marker_records_the_sha256_of_each_output(lgp_dir):
    record = json.loads((lgp_dir / ".done.lgp").read_text())
    assert record["sha256"] == {name: hashlib.sha256((lgp_dir / name).read_bytes()).hexdigest()
                                for name in ("lgp.ark", "lgp.scp")}


def test_untouched_outputs_verify_clean(lgp_dir, monkeypatch):
    key = output_key(lgp_dir, "lgp")
    assert verify_contents(lgp_dir, "lgp") == []
    monkeypatch.setenv(VERIFY_INPUTS_ENV, "true")
    assert output_key(lgp_dir, "lgp") == key  # the check adds no key of its own: nothing downstream is redone
    proc = validate(lgp_dir.parent)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 done markers, 2 files" in proc.stdout and ": 0 problems" in proc.stdout


def test_bytes_changed_with_mtime_kept_are_found_by_the_content_check(lgp_dir, monkeypatch):
    ark = lgp_dir / "lgp.ark"
    before = load(read_scp(lgp_dir / "lgp.scp")["spk1-utt2"])
    flip_byte_keeping_mtime(ark)
    assert not np.array_equal(load(read_scp(lgp_dir / "lgp.scp")["spk1-utt2"]), before)  # the values moved
    assert is_done(lgp_dir, "lgp", "key")  # size and time alone cannot see it
    monkeypatch.delenv(VERIFY_INPUTS_ENV, raising=False)
    output_key(lgp_dir, "lgp")  # nor can a reader without the option

    assert [path for path, _ in verify_contents(lgp_dir, "lgp")] == [str(ark)]
    monkeypatch.setenv(VERIFY_INPUTS_ENV, "1")
    with pytest.raises(StageError, match=rf"{ark}.*changed after stage 3 \(LGP\) wrote it; delete it and rerun"):
        output_key(lgp_dir, "lgp")
    proc = validate(lgp_dir.parent)
    assert proc.returncode == 1
    problems = [line for line in proc.stdout.splitlines() if line.startswith(str(ark))]
    assert len(problems) == 1 and "stage 3 (LGP)" in problems[0] and ": 1 problems" in proc.stdout


def test_marker_without_digests_is_done_but_not_content_checked(lgp_dir):
    """A marker written before digests were recorded: still done (upgrading redoes nothing), reported as unchecked."""
    marker = lgp_dir / ".done.lgp"
    record = json.loads(marker.read_text())
    del record["sha256"]
    marker.write_text(json.dumps(record))
    flip_byte_keeping_mtime(lgp_dir / "lgp.ark")
    assert is_done(lgp_dir, "lgp", "key") and verify_contents(lgp_dir, "lgp") == []
    proc = validate(lgp_dir.parent)
    assert proc.returncode == 0 and "1 markers record no digests" in proc.stdout, proc.stdout + proc.stderr


def test_a_missing_output_is_named(lgp_dir):
    (lgp_dir / "lgp.scp").unlink()
    assert verify_contents(lgp_dir, "lgp") == [(str(lgp_dir / "lgp.scp"), "is missing")]
    proc = validate(lgp_dir.parent)
    assert proc.returncode == 1 and f"{lgp_dir / 'lgp.scp'} is missing: rerun stage 3 (LGP)" in proc.stdout
