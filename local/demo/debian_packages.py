"""The Debian package cache of the recorded half of the demo corpus: `apt-get download` into `<cache>/debs/`, `dpkg -x`
into `<cache>/root/<package>/`, nothing ever installed and nothing fetched from anywhere but apt."""
from __future__ import annotations

import logging
import os
import re
import shlex
import shutil
import subprocess
import time
import zipfile
from pathlib import Path
from typing import Iterable

from pipeline.utils.atomic import swap_in_directory

# Overrides of the two commands fetch_packages runs (a command line each), for tests and unusual systems.
APT_GET_ENV = "DEMO_RECORDINGS_APT_GET"
DPKG_ENV = "DEMO_RECORDINGS_DPKG"
EXTRACTED_MARKER = ".extracted"   # written last into a package's tree: its content names the .deb it came from
PACKAGE_NAME = re.compile(r"[a-z0-9][a-z0-9+.-]+")


class _Unavailable(Exception):
    """A package that cannot be had; the argument says why."""


def _command(given: str | None, env: str, default: str) -> list[str]:
    return shlex.split(given or os.environ.get(env) or default)


def _run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(cmd, capture_output=True, check=False, **kwargs)
    except OSError as err:   # the command itself is missing
        raise _Unavailable(f"cannot run {cmd[0]}: {err}") from err


def _last_line(proc: subprocess.CompletedProcess) -> str:
    lines = [ln for ln in (proc.stderr + proc.stdout).decode(errors="replace").splitlines() if ln.strip()]
    return lines[-1].strip() if lines else f"exit {proc.returncode}"


def _cached_deb(debs_dir: Path, package: str) -> Path | None:
    debs = sorted(debs_dir.glob(f"{package}_*.deb"))   # names never hold "_", so this is that package only
    return debs[-1] if debs else None


def _download(package: str, debs_dir: Path, apt_get: list[str]) -> Path:
    # apt-get writes into its working directory; a private one keeps a half download out of debs/.
    for stale in debs_dir.glob(f".download.{package}.*"):
        shutil.rmtree(stale, ignore_errors=True)
    work = debs_dir / f".download.{package}.{os.getpid()}"
    work.mkdir(parents=True)
    try:
        proc = _run(apt_get + ["download", package], cwd=work)
        found = sorted(work.glob(f"{package}_*.deb"))
        if proc.returncode != 0 or not found:
            raise _Unavailable(f"apt-get download failed: {_last_line(proc)}")
        os.replace(found[-1], debs_dir / found[-1].name)
        return debs_dir / found[-1].name
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _unzip_uqm_addons(tree: Path) -> None:
    """The Ur-Quan Masters ships its content as zips named *.uqm: unpack each beside itself (name without .uqm)."""
    for archive in sorted(tree.rglob("*.uqm")):
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                zf.extractall(archive.with_suffix(""))   # extractall drops absolute and ".." member paths


def _extract(deb: Path, final: Path, dpkg: list[str]) -> None:
    """Unpack into a private directory, mark it complete, then rename it into place: a crash at any point leaves
    either the old state or a `.partial` directory that nothing trusts and the next run removes (so one cache
    serves one build at a time)."""
    for stale in final.parent.glob(f".{final.name}.partial-*"):
        shutil.rmtree(stale, ignore_errors=True)
    work = final.parent / f".{final.name}.partial-{os.getpid()}"
    work.mkdir(parents=True)
    try:
        proc = _run(dpkg + ["-x", str(deb), str(work)])
        if proc.returncode != 0:
            raise _Unavailable(f"dpkg -x {deb.name} failed: {_last_line(proc)} (delete {deb} if it is corrupt)")
        _unzip_uqm_addons(work)
        (work / EXTRACTED_MARKER).write_text(deb.name + "\n")
        swap_in_directory(work, final)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _is_extracted(tree: Path, deb: Path) -> bool:
    marker = tree / EXTRACTED_MARKER
    return marker.is_file() and marker.read_text().strip() == deb.name


def fetch_packages(packages: Iterable[str], cache_dir: str | os.PathLike, log: logging.Logger, *,
                   apt_get: str | None = None, dpkg: str | None = None) -> tuple[dict[str, Path], dict[str, str]]:
    """Download (`apt-get download`, into `<cache>/debs/`) and unpack (`dpkg -x`, into `<cache>/root/<package>/`)
    each package, reusing what the cache holds. Returns (package -> unpacked root, package -> why it is missing):
    a package apt cannot provide (not in the sources, non-free not enabled, offline) is reported, not raised.
    Needs no root. `apt_get` and `dpkg` (or $DEMO_RECORDINGS_APT_GET, $DEMO_RECORDINGS_DPKG) replace the commands.
    """
    cache_dir = Path(cache_dir)
    debs_dir, roots_dir = cache_dir / "debs", cache_dir / "root"
    debs_dir.mkdir(parents=True, exist_ok=True)
    roots_dir.mkdir(parents=True, exist_ok=True)
    apt_cmd, dpkg_cmd = _command(apt_get, APT_GET_ENV, "apt-get"), _command(dpkg, DPKG_ENV, "dpkg")
    roots: dict[str, Path] = {}
    missing: dict[str, str] = {}
    for package in dict.fromkeys(packages):
        started = time.time()
        try:
            if not PACKAGE_NAME.fullmatch(package):
                raise _Unavailable("not a Debian package name")
            deb = _cached_deb(debs_dir, package)
            if deb is None:
                deb = _download(package, debs_dir, apt_cmd)
                log.info("%s: downloaded %s (%.1f MB) in %.1f s", package, deb.name, deb.stat().st_size / 1e6,
                         time.time() - started)
            tree = roots_dir / package
            if not _is_extracted(tree, deb):
                started = time.time()
                _extract(deb, tree, dpkg_cmd)
                log.info("%s: unpacked into %s in %.1f s", package, tree, time.time() - started)
            roots[package] = tree
        except _Unavailable as err:
            missing[package] = str(err)
            log.warning("%s: not available: %s", package, err)
    return roots, missing
