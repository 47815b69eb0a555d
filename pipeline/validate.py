"""The content check of every finished stage below some directories (`python -m pipeline validate`): each done
marker's outputs re-hashed and compared with the sha256 recorded when the stage finished."""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

from pipeline.utils.atomic import TMP_SUFFIX
from pipeline.utils.checksums import describe_content_problem
from pipeline.utils.stage import DONE_PREFIX, STAGE_NAMES, recorded_digests, verify_contents


@dataclass
class ValidationReport:
    problems: list[str] = field(default_factory=list)  # one line each: the file, what is wrong, what to rerun
    markers: int = 0
    files: int = 0
    bytes: int = 0
    without_digests: list[Path] = field(default_factory=list)  # markers older than content checks
    seconds: float = 0.0

    def summary(self) -> str:
        rate = self.bytes / 1e6 / max(self.seconds, 1e-9)
        line = (f"{self.markers} done markers, {self.files} files ({self.bytes / 1e6:.1f} MB) re-hashed in "
                f"{self.seconds:.1f} s ({rate:.0f} MB/s): {len(self.problems)} problems")
        if self.without_digests:
            line += (f"; {len(self.without_digests)} markers record no digests (written before content checks; rerun "
                     f"their stages to add them), e.g. {self.without_digests[0]}")
        return line


def done_markers(roots: Iterable[str | os.PathLike]) -> Iterator[tuple[Path, str]]:
    """(directory, name) of every done marker below each root, in path order (a crashed write's .tmp left out)."""
    for root in roots:
        for marker in sorted(Path(root).rglob(f"{DONE_PREFIX}*")):
            if marker.is_file() and not marker.name.endswith(TMP_SUFFIX):
                yield marker.parent, marker.name[len(DONE_PREFIX):]


def stage_that_wrote(name: str, marker: Path) -> str:
    """How a person names the stage that wrote marker `name`; a job's marker (`lgp.3`) names its stage."""
    return STAGE_NAMES.get(name.split(".")[0], f"the stage that wrote {marker}")


def validate_done_outputs(roots: Iterable[str | os.PathLike]) -> ValidationReport:
    """Re-hash the outputs recorded by every done marker below `roots`; one problem line per changed file."""
    report = ValidationReport()
    start = time.perf_counter()
    for directory, name in done_markers(roots):
        marker = directory / f"{DONE_PREFIX}{name}"
        digests = recorded_digests(directory, name)
        report.markers += 1
        if not digests:  # {} from an older marker; None from one that is not a record (read as not done anyway)
            report.without_digests.append(marker)
            continue
        report.files += len(digests)
        report.bytes += sum(path.stat().st_size for path in (directory / n for n in digests) if path.is_file())
        for path, problem in verify_contents(directory, name):
            report.problems.append(f"{describe_content_problem(path, problem, stage_that_wrote(name, marker))} "
                                   f"(recorded in {marker})")
    report.seconds = time.perf_counter() - start
    return report
