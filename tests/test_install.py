"""The install steps on the path a fresh machine takes, where things are missing: CI machines already have the
packages, so without these tests a broken install step stays green.

Each test runs the real script under `set -euo pipefail` with stand-ins for what would change the machine
(`apt-get` records its arguments, `dpkg-query` reports from a state file, `pip` records what it would install)
and the real `apt-cache` where the decision depends on it.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e   # the whole recipe, the job engines or the install: not in tests/run.sh --fast

REPO = Path(__file__).resolve().parents[1]
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0

# A dpkg that knows only what the fake apt-get installed, and an apt-get that records every call.
FAKE_DPKG_QUERY = """#!/bin/bash
# dpkg-query -W -f='${Package} ${Status}\\n' PKG...: the packages of STATE are installed, no other.
for p in "${@:3}"; do
  if grep -qx "$p" "$STATE" 2>/dev/null; then echo "$p install ok installed"; fi
done
exit 0
"""
FAKE_APT_GET = """#!/bin/bash
echo "$*" >> "$APT_LOG"
if [[ " $* " == *" install "* ]]; then
  for a in "$@"; do case $a in -*|install) ;; *) echo "$a" >> "$STATE" ;; esac; done
fi
exit 0
"""


def fake_bin(tmp_path: Path, **scripts: str) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    for name, text in scripts.items():
        path = bin_dir / name.replace("_", "-")
        path.write_text(text)
        path.chmod(0o755)
    return bin_dir


def apt_calls(tmp_path: Path) -> list[list[str]]:
    log = tmp_path / "apt.log"
    return [line.split() for line in log.read_text().splitlines()] if log.is_file() else []


def candidates(packages: list[str]) -> set[str]:
    """The packages the machine's real apt can install (what the script must decide by itself)."""
    out = subprocess.run(["apt-cache", "policy", *packages], capture_output=True, text=True).stdout
    found, current = set(), None
    for line in out.splitlines():
        if line and not line[0].isspace() and line.endswith(":"):
            current = line[:-1]
        elif line.strip().startswith("Candidate:") and "(none)" not in line:
            found.add(current)
    return found


@pytest.mark.skipif(not IS_ROOT or not shutil.which("apt-cache"), reason="needs root and Debian's apt-cache")
def test_demo_voices_are_installed_on_a_machine_that_has_none(tmp_path):
    fake = fake_bin(tmp_path, dpkg_query=FAKE_DPKG_QUERY, apt_get=FAKE_APT_GET)
    apt_etc = tmp_path / "etc-apt"
    shutil.copytree("/etc/apt", apt_etc, symlinks=True)
    env = {**os.environ, "PATH": f"{fake}:{os.environ['PATH']}", "APT_ETC": str(apt_etc),
           "APT_LOG": str(tmp_path / "apt.log"), "STATE": str(tmp_path / "installed")}
    done = subprocess.run([str(REPO / "local" / "install_demo_voices.sh")], env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    calls = apt_calls(tmp_path)
    assert ["update", "-q"] in calls
    installs = [c for c in calls if "install" in c]
    assert len(installs) == 1, calls
    asked = set(installs[0]) - {"install", "-y", "-q", "--no-install-recommends"}
    table = (REPO / "local" / "demo" / "voices.tsv").read_text().splitlines()
    mbrola = sorted({p for line in table if not line.startswith("#") and "\t" in line
                     for p in line.split("\t")[5].split(",") if p.startswith("mbrola-")})
    assert {"espeak-ng", "flite", "festival", "sox"} <= asked
    # The MBROLA voices are asked for exactly when this machine's apt offers them (contrib/non-free enabled).
    assert set(mbrola) & asked == candidates(mbrola)
    assert not list(apt_etc.rglob("*.tmp"))


@pytest.mark.skipif(not IS_ROOT, reason="needs root (the script installs nothing otherwise)")
def test_slurm_is_installed_on_a_machine_without_it(tmp_path):
    fake = fake_bin(tmp_path, apt_get=FAKE_APT_GET)
    path = f"{fake}:/usr/bin:/bin"  # no /usr/sbin, where Debian puts slurmctld and munged
    if shutil.which("slurmctld", path=path) or shutil.which("munged", path=path):
        pytest.skip("slurmctld is outside /usr/sbin on this machine")
    env = {**os.environ, "PATH": path, "APT_LOG": str(tmp_path / "apt.log"), "STATE": str(tmp_path / "installed")}
    done = subprocess.run([str(REPO / "tests" / "slurm" / "install_slurm.sh")], env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    calls = apt_calls(tmp_path)
    assert calls[0][0] == "update" and {"slurm-wlm", "munge"} <= set(calls[1]) and "install" in calls[1]


def bare_path(tmp_path: Path, *tools: str, **scripts: str) -> str:
    """A PATH of only these real tools (linked) and stand-in scripts: what a machine without ffmpeg has."""
    bin_dir = fake_bin(tmp_path, **scripts)
    for tool in ("bash", "cat", *tools):
        (bin_dir / tool).symlink_to(shutil.which(tool))
    return str(bin_dir)


@pytest.mark.skipif(not IS_ROOT, reason="needs root (the script installs nothing otherwise)")
def test_ffmpeg_is_installed_on_a_machine_without_it(tmp_path):
    env = {**os.environ, "PATH": bare_path(tmp_path, "id", apt_get=FAKE_APT_GET), "APT_LOG": str(tmp_path / "apt.log"),
           "STATE": str(tmp_path / "installed")}
    done = subprocess.run([str(REPO / "local" / "install_ffmpeg.sh")], env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert apt_calls(tmp_path) == [["update", "-q"], ["install", "-y", "-q", "--no-install-recommends", "ffmpeg"]]


def test_ffmpeg_install_as_another_user_says_what_to_run(tmp_path):
    env = {**os.environ, "PATH": bare_path(tmp_path, id="#!/bin/sh\necho 1000\n", apt_get=FAKE_APT_GET),
           "APT_LOG": str(tmp_path / "apt.log")}
    done = subprocess.run([str(REPO / "local" / "install_ffmpeg.sh")], env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 1 and apt_calls(tmp_path) == []
    assert "apt-get install -y --no-install-recommends ffmpeg" in done.stderr


# A Python that installs nothing: `pip` is recorded, `import torch` fails until pip has installed torch, and the
# environment's prefix is the fake one. Everything else runs the real interpreter.
FAKE_PYTHON = f"""#!/bin/bash
case "$*" in
  "-m pip "*) echo "$*" >> "$PIP_LOG"; exit 0 ;;
  "-c import torch")
    grep -q "torch==" "$PIP_LOG" 2>/dev/null; exit $? ;;
  "-c import torch; print(\\"torch\\", torch.__version__)") echo "torch (recorded)"; exit 0 ;;
  "-c import sys; print(sys.prefix)") echo "$FAKE_PREFIX"; exit 0 ;;
esac
exec {sys.executable} "$@"
"""


def test_python_packages_are_installed_into_an_empty_environment(tmp_path):
    repo = tmp_path / "repo"
    (repo / "steps").mkdir(parents=True)
    shutil.copy(REPO / "steps" / "install.sh", repo / "steps")
    shutil.copy(REPO / "setup.cfg", repo)
    prefix = tmp_path / "env"
    fake = fake_bin(prefix, python=FAKE_PYTHON)
    env = {**os.environ, "VIRTUAL_ENV": str(prefix), "PATH": f"{fake}:{os.environ['PATH']}",
           "PIP_LOG": str(tmp_path / "pip.log"), "FAKE_PREFIX": str(prefix)}

    def install() -> subprocess.CompletedProcess:
        done = subprocess.run([str(repo / "steps" / "install.sh"), "--test"], env=env, capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return done

    install()
    calls = (tmp_path / "pip.log").read_text().splitlines()
    assert any(c.split()[-1] == "torch==2.13.0" for c in calls), calls  # the CPU wheel, never a bare `torch`
    requirements = next(c for c in calls if "kaldiio" in c).split()
    for package in ("numpy", "scikit-learn", "python_speech_features", "torch>=2.1", "joblib", "kaldiio", "click",
                    "pytest>=7"):
        assert any(r.startswith(package) for r in requirements), package
    assert (prefix / ".gmm-resnext-installed").is_file()
    install()  # the stamp says it is done: nothing is installed twice
    assert (tmp_path / "pip.log").read_text().splitlines() == calls


@pytest.mark.skipif(not IS_ROOT, reason="needs root (without it the script only says what to install)")
def test_a_python_without_venv_gets_it_from_apt_then_an_environment(tmp_path):
    repo = tmp_path / "repo"
    (repo / "steps").mkdir(parents=True)
    shutil.copy(REPO / "steps" / "install.sh", repo / "steps")
    shutil.copy(REPO / "setup.cfg", repo)
    venv_python = tmp_path / "venv_python"
    venv_python.write_text(FAKE_PYTHON)
    venv_python.chmod(0o755)
    system_python = f"""#!/bin/bash
case "$*" in
  "-m venv --help"|"-c import ensurepip") grep -q python3-venv "$APT_LOG" 2>/dev/null; exit $? ;;
  "-m venv .venv") mkdir -p .venv/bin && cp "{venv_python}" .venv/bin/python; exit 0 ;;
esac
exec {sys.executable} "$@"
"""
    fake = fake_bin(tmp_path, apt_get=FAKE_APT_GET, python3=system_python)
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "CONDA_PREFIX")}
    env.update(PATH=f"{fake}:{os.environ['PATH']}", APT_LOG=str(tmp_path / "apt.log"), STATE=str(tmp_path / "state"),
               PIP_LOG=str(tmp_path / "pip.log"), FAKE_PREFIX=str(repo / ".venv"), PYTHON=str(fake / "python3"))
    done = subprocess.run([str(repo / "steps" / "install.sh")], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    calls = apt_calls(tmp_path)
    assert any("python3-venv" in c for c in calls) and "creating the environment" in done.stdout
    assert (repo / ".venv" / "bin" / "python").is_file() and (repo / ".venv" / ".gmm-resnext-installed").is_file()
