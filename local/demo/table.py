"""The demo corpus's people tables (`voices.tsv`, `recordings.tsv`): tab-separated, `#` comments and blank lines
skipped, one header line naming the columns."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator, Sequence


def read_table(path: str | os.PathLike, columns: Sequence[str],
               error: type[Exception]) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield (line number, row as column -> cell) for each data line. A header without one of `columns`, or a line
    whose cell count differs from the header's, raises `error` naming the file and line."""
    header = None
    for lineno, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        cells = line.split("\t")
        if header is None:
            header = cells
            missing = [c for c in columns if c not in header]
            if missing:
                raise error(f"{path}:{lineno}: header lacks column(s) {', '.join(missing)}")
            continue
        if len(cells) != len(header):
            raise error(f"{path}:{lineno}: {len(cells)} tab-separated cells, the header has {len(header)}")
        yield lineno, dict(zip(header, cells))
