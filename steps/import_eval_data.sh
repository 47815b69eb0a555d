#!/usr/bin/env bash
# Copies a user's Kaldi data dir (wav.scp, utt2spk, trials*; any sample rate) into <data-root>/<name>,
# sorted and validated, and prints <name> (the directory's basename), for evaluation with trained models.
# usage: steps/import_eval_data.sh <user-data-dir> <data-root>
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: $0 <user-data-dir> <data-root>" >&2; exit 1; }
. "$(dirname "$0")/../path.sh"
src=$(cd "$1" && pwd); name=$(basename "$src"); dst="$2/$name"
for f in wav.scp utt2spk; do
  [ -f "$src/$f" ] || { echo "$0: $src/$f is missing: an evaluation set needs wav.scp, utt2spk and trials" >&2; exit 1; }
done
ls "$src"/trials* >/dev/null 2>&1 || { echo "$0: $src has no trials file (enroll test target|nontarget)" >&2; exit 1; }
if [ "$(cd "$2" 2>/dev/null && pwd)/$name" != "$src" ]; then
  mkdir -p "$dst"
  for f in wav.scp utt2spk spk2gender utt2dur "$src"/trials*; do
    f=$(basename "$f"); [ -f "$src/$f" ] && cp "$src/$f" "$dst/$f"
  done
  python -m pipeline fix-data-dir "$dst" >&2
fi
python -m pipeline validate-data-dir "$dst" >&2
echo "$name"
