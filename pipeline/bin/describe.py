"""`inspect`: what Kaldi's feat-to-dim, feat-to-len, copy-feats ark,t:- and gmm-global-info show a Kaldi user.
(The module is not named inspect.py, which would shadow the standard library's.)

    python -m pipeline inspect data/train                 # counts per speaker and gender, tables present
    python -m pipeline inspect data/train/feats.scp       # keys, shapes, value statistics
    python -m pipeline inspect mfcc/raw_mfcc_train.1.ark --key spk1-utt1 --text   # one matrix as text
    python -m pipeline inspect exp/gmm/gi                  # GMM components, dim, weights, LGP normalisation
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import click
import kaldiio
import numpy as np

from pipeline.features.gmm import DiagGMM
from pipeline.utils.archive import ArchiveError, load, read_scp
from pipeline.utils.datadir import DataDir


def describe_data_dir(path: Path) -> list[str]:
    data = DataDir.load(path, check_sorted=False)
    lines = [f"{path}: data dir with tables {', '.join(sorted(data.utt_tables) + sorted(data.spk_tables))}"]
    lines += [f"  {k}: {v}" for k, v in data.summary().items()]
    per_spk = Counter(data.utt2spk.values())
    counts = np.array(list(per_spk.values()))
    lines.append(f"  utterances per speaker: min {counts.min()}, median {int(np.median(counts))}, max {counts.max()}")
    gender = data.spk_tables.get("spk2gender", {})
    for spk in sorted(per_spk):
        lines.append(f"    {spk} {gender.get(spk, '?')} {per_spk[spk]}")
    return lines


def describe_archive(items: list[tuple[str, np.ndarray]], source: str) -> list[str]:
    lines = [f"{source}: {len(items)} entries"]
    if not items:
        return lines
    shapes = Counter(a.shape[1:] for _, a in items)
    lengths = np.array([a.shape[0] for _, a in items])
    values = np.concatenate([a.reshape(-1) for _, a in items])
    dims = ", ".join(f"{'x'.join(map(str, s)) or 'vector'} ({n})" for s, n in shapes.items())
    lines.append(f"  dim (feat-to-dim): {dims}")
    lines.append(f"  rows per entry (feat-to-len): min {lengths.min()}, mean {lengths.mean():.1f}, max {lengths.max()}, "
                 f"total {lengths.sum()}")
    lines.append(f"  values: mean {values.mean():.4g}, std {values.std():.4g}, min {values.min():.4g}, "
                 f"max {values.max():.4g}")
    for key, array in items[:5]:
        lines.append(f"  {key} {array.shape}")
    return lines


def describe_gmm(path: Path) -> list[str]:
    gmm = DiagGMM.load_npz(path / "gmm.npz" if path.is_dir() else path)
    w = gmm.weights
    lines = [f"{path}: diagonal GMM, {gmm.num_components} components, dim {gmm.dim} (gmm-global-info)",
             f"  weights: min {w.min():.3g}, max {w.max():.3g}, entropy {-(w * np.log(w)).sum():.3f} nats",
             f"  variances: min {gmm.variances.min():.3g}, max {gmm.variances.max():.3g}"]
    if gmm.lgp_mean is not None:
        lines.append(f"  LGP normalisation: mean in [{gmm.lgp_mean.min():.1f}, {gmm.lgp_mean.max():.1f}], "
                     f"std in [{gmm.lgp_std.min():.2f}, {gmm.lgp_std.max():.2f}]")
    return lines


@click.command("inspect")
@click.option("--key", help="only this entry of an scp or ark")
@click.option("--text", is_flag=True, help="print the matrices as text (copy-feats ark,t:-)")
@click.option("--max-entries", default=1000, show_default=True, help="entries read for statistics")
@click.argument("target", type=click.Path(exists=True))
def main(key: str | None, text: bool, max_entries: int, target: str) -> None:
    """Describe TARGET: a data dir, an scp, an ark, a GMM dir or gmm.npz."""
    path = Path(target)
    try:
        if path.is_dir() and (path / "utt2spk").is_file():
            lines = describe_data_dir(path)
        elif (path.is_dir() and (path / "gmm.npz").is_file()) or path.suffix == ".npz":
            lines = describe_gmm(path)
        else:
            if path.suffix == ".scp":
                table = read_scp(path)
                keys = [key] if key else list(table)[:max_entries]
                items = [(k, load(table[k])) for k in keys]
            else:
                items = []
                for k, array in kaldiio.load_ark(str(path)):
                    if key is None or k == key:
                        items.append((k, np.asarray(array)))
                    if len(items) >= max_entries:
                        break
            lines = describe_archive(items, str(path))
            if text:
                for k, array in items:
                    lines.append(f"{k}  [")
                    rows = np.atleast_2d(array)
                    lines += ["  " + " ".join(f"{v:.6g}" for v in row) for row in rows]
                    lines[-1] += " ]"
    except (ArchiveError, KeyError, ValueError, OSError) as err:
        raise click.ClickException(f"{target}: {err}") from err
    click.echo("\n".join(lines))
