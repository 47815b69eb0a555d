"""What stage 5 writes for a set, read back: stage 6, `SpeakerModel` and the evaluation tools read it here, without
torch (a rerun's stage 6 decides in a blink that it has nothing to do).

`load_embeddings(dir)`: per utterance the full-utterance vector as row 0, then its crop embeddings;
`load_recordings(dir, system)`: what a system's scorer reads (the GMM-UBM's enrolment and test vectors);
`write_mean_embedding` / `load_mean_embedding`: the set's mean full-utterance vector (`ivector-mean`'s `mean.vec`).
"""
from __future__ import annotations

import os
from pathlib import Path

import kaldiio
import numpy as np

from pipeline.errors import PipelineError
from pipeline.recipe_layout import MEAN_EMBEDDING_FILE
from pipeline.scoring.cosine import mean_embedding
from pipeline.systems import CROP_ARCHIVE, EMBEDDING_ARCHIVE, System
from pipeline.utils.archive import iterate_scp
from pipeline.utils.atomic import atomic_file
from pipeline.utils.stage import StageError


def write_mean_embedding(emb_dir: str | os.PathLike, recipe_dir: str | os.PathLike | None = None) -> Path:
    """Write the mean of `emb_dir`'s full-utterance embeddings as a Kaldi vector (`ivector-mean`'s `mean.vec`):
    stage 5 does, so that scoring and `SpeakerModel` take the cohort's mean without reading all its embeddings."""
    path = Path(emb_dir) / MEAN_EMBEDDING_FILE
    mean = mean_embedding({utt: vec for utt, vec in iterate_scp(Path(emb_dir) / f"{EMBEDDING_ARCHIVE}.scp",
                                                                recipe_dir=recipe_dir)})
    with atomic_file(path, "wb") as handle:
        kaldiio.save_mat(handle, mean.astype(np.float32))
    return path


def load_mean_embedding(emb_dir: str | os.PathLike) -> np.ndarray:
    """The mean `write_mean_embedding` wrote for `emb_dir`."""
    path = Path(emb_dir) / MEAN_EMBEDDING_FILE
    if not path.is_file():
        raise StageError(f"{path} not found: rerun stage 5 (embeddings) for {Path(emb_dir).name}")
    return np.array(kaldiio.load_mat(str(path)))   # a writable copy (torch buffers are made from it)


def load_embeddings(emb_dir: str | os.PathLike, recipe_dir: str | os.PathLike | None = None, *,
                    with_crops: bool = True) -> dict[str, np.ndarray]:
    """utt -> (1 + k, dim): row 0 the full-utterance embedding, then its crop embeddings (if extracted and
    `with_crops`). `recipe_dir`: where the scp's relative archive paths start, for a reader working elsewhere."""
    full_scp = Path(emb_dir) / f"{EMBEDDING_ARCHIVE}.scp"
    if not full_scp.is_file():
        raise StageError(f"{full_scp} not found: run stage 5 (embeddings) first")
    embeddings = {utt: vec[None, :] for utt, vec in iterate_scp(full_scp, recipe_dir=recipe_dir)}
    crops_scp = Path(emb_dir) / f"{CROP_ARCHIVE}.scp"
    if with_crops and crops_scp.is_file():
        for utt, crops in iterate_scp(crops_scp, recipe_dir=recipe_dir):
            embeddings[utt] = np.concatenate([embeddings[utt], np.atleast_2d(crops)], axis=0)
    return embeddings


def load_recordings(emb_dir: str | os.PathLike, system: System, *, with_crops: bool = True
                    ) -> dict[str, np.ndarray]:
    """utt -> what stage 5 wrote for it, as `SpeakerModel.embed` returns it and `system`'s scorer reads it: an
    embedding system's (1 + k, dim) (`load_embeddings`; row 0 alone without `with_crops`), the GMM-UBM's (2, C*d)
    enrolment and test vectors."""
    if not system.speaker_embedding:
        scps = [Path(emb_dir) / f"{name}.scp" for name in system.archives]
        enroll, test = (dict(iterate_scp(scp)) for scp in scps)
        if enroll.keys() != test.keys():
            utt = sorted(enroll.keys() ^ test.keys())[0]
            raise PipelineError(f"{scps[0]} and {scps[1]} list different utterances (e.g. {utt}): rerun stage 5 "
                                f"for {emb_dir}")
        return {utt: np.stack([vector, test[utt]]) for utt, vector in enroll.items()}
    return load_embeddings(emb_dir, with_crops=with_crops)
