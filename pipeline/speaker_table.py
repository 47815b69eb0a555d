"""Enrolled speakers of one trained model, and identification against them.

A table is a directory (by default `<exp>/speakers`) holding `speakers.{ark,scp}`, a Kaldi archive with one matrix
of scoring rows per speaker name, `spk2num_utts` (recordings enrolled) and `model.json` (which model wrote it). A
speaker's rows are the model's scorer's enrolment (`Scorer.enrol`) of their recordings' rows (`Scorer.rows`): for an
embedding model, the mean of the length-normalised vectors stage 6 scores (training mean removed), row 0 of the
full-utterance vectors, row 1 of each recording's mean crop vector, as Kaldi's `ivector-mean` averages normalised
i-vectors. Scoring a recording against a speaker is then stage 6's score (`Scorer.score_matrix`), with the enrolment
side averaged:

    0.5 * (cos(row 0, full vector) + row 1 . mean unit crop vector)

which for one enrolment recording is exactly the pairwise score of stage 6.

Every change writes a new table beside the old one and swaps it in, so a crash or a bad recording never loses what
was enrolled; a table written by another model (another final checkpoint) is refused.
"""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import kaldiio
import numpy as np

from pipeline.errors import PipelineError
from pipeline.scoring import Scorer
from pipeline.utils.archive import ArchiveWriter
from pipeline.utils.atomic import recover_directory, swap_in_directory
from pipeline.utils.datadir import read_table, write_table
from pipeline.utils.paths import recipe_path

ARK_STEM = "speakers"
COUNTS = "spk2num_utts"
OWNER = "model.json"


class SpeakerTableError(PipelineError):
    """A bad speaker name, a table of another model, a damaged table."""


def check_name(name: str) -> str:
    if not name or any(c.isspace() for c in name):
        raise SpeakerTableError(f"speaker name {name!r}: names are Kaldi table keys, non-empty and without "
                                f"whitespace (use e.g. {'_'.join(name.split()) or 'speaker_1'!r})")
    return name


@dataclass
class SpeakerTable:
    """Speaker name -> scoring rows and enrolment count, for the model `owner` describes, scored by its `scorer`."""
    directory: Path
    owner: dict
    scorer: Scorer
    rows: dict[str, np.ndarray]
    counts: dict[str, int]

    @classmethod
    def open(cls, directory: str | os.PathLike, owner: dict, scorer: Scorer) -> "SpeakerTable":
        """The table in `directory` (empty if there is none yet); SpeakerTableError if another model wrote it."""
        directory = Path(directory)
        recover_directory(directory)
        if not (directory / OWNER).is_file():
            if directory.is_dir() and any(directory.iterdir()):
                raise SpeakerTableError(f"{directory} is not a speaker table (no {OWNER}); give another --table")
            return cls(directory, owner, scorer, {}, {})
        written_by = json.loads((directory / OWNER).read_text())
        if written_by.get("checksum") != owner["checksum"]:
            raise SpeakerTableError(
                f"{directory} was enrolled with {written_by.get('model', '?')} (checksum "
                f"{str(written_by.get('checksum'))[:12]}), not with {owner['model']} ({owner['checksum'][:12]}): "
                f"its vectors mean nothing to this model; give another --table or enrol again")
        try:  # the archive itself, not the scp's absolute paths: a table can be moved or copied
            rows = {k: np.asarray(v) for k, v in kaldiio.load_ark(str(directory / f"{ARK_STEM}.ark"))}
            counts = {k: int(v) for k, v in read_table(directory / COUNTS).items()}
        except (OSError, ValueError) as err:
            raise SpeakerTableError(f"{directory}: damaged speaker table ({err})") from err
        return cls(directory, owner, scorer, rows, counts)

    def enrol(self, name: str, recordings: list[np.ndarray]) -> None:
        """Add (or replace) `name` enrolled from the recordings' scoring rows (`Scorer.rows`), and save the table."""
        check_name(name)
        self.rows[name] = self.scorer.enrol(recordings)
        self.counts[name] = len(recordings)
        self.save()

    def rank(self, test: np.ndarray) -> list[tuple[str, float]]:
        """Every enrolled speaker with its score against one recording's scoring rows (`Scorer.rows`), best
        first."""
        if not self.rows:
            raise SpeakerTableError(f"{self.directory}: no speakers enrolled (python -m pipeline enroll ...)")
        names = sorted(self.rows, key=str.encode)
        scores = self.scorer.score_matrix(np.stack([self.rows[n] for n in names]), test[None])[:, 0]
        order = np.argsort(-scores, kind="stable")
        return [(names[i], float(scores[i])) for i in order]

    def save(self) -> None:
        """Write the whole table beside the old one, then swap it in; the old one is removed only after."""
        staging = self.directory.with_name(f".{self.directory.name}.staging")
        if staging.exists():
            shutil.rmtree(staging)
        staging.mkdir(parents=True)
        with ArchiveWriter(staging / ARK_STEM) as writer:
            for name in sorted(self.rows, key=str.encode):
                writer.write(name, self.rows[name])
        # the scp names the archive by the path it will have once swapped in
        scp = staging / f"{ARK_STEM}.scp"
        scp.write_text(scp.read_text().replace(str(staging / ARK_STEM), recipe_path(self.directory / ARK_STEM)))
        write_table(staging / COUNTS, self.counts)
        (staging / OWNER).write_text(json.dumps(self.owner, indent=1, sort_keys=True) + "\n")
        swap_in_directory(staging, self.directory)


def owner_of(model) -> dict:
    """What identifies the model a table belongs to: its final checkpoint's checksum (the trust issue's sidecar)."""
    return {"model": str(Path(model.exp_dir).resolve()), "model_name": model.name, "checksum": model.checksum,
            "emb_dim": int(model.embedder.emb_dim)}
