#!/usr/bin/env bash
# Stage 0 on VoxCeleb: <data>/train = VoxCeleb2 dev (what the paper trains on; a link to <data>/voxceleb2_dev) and
# <data>/voxceleb1 (the test set, with trials_O, trials_E, trials_H from the cleaned lists).
#
#   local/make_voxceleb_data.sh [--nj N] <voxceleb1-root> <voxceleb2-root> <data-dir>
#   local/make_voxceleb_data.sh --config conf/voxceleb.yaml [-o key=value]... [--nj N] <data-dir>   # as run.sh calls it
#
# With --config the roots come from the keys voxceleb.voxceleb1_root and voxceleb.voxceleb2_root. The meta CSVs and
# trial lists are read from the roots (vox1_meta.csv, veri_test2.txt, list_test_all2.txt, list_test_hard2.txt;
# vox2_meta.csv) unless --vox1-meta, --vox2-meta or --trials-dir (or voxceleb.vox1_meta, ... in the config) say
# otherwise. A data dir that already validates is kept: remove it to prepare it again.
set -euo pipefail
here=$(dirname "$0")
. "$here/../path.sh"

nj=4; config=""; overrides=(); vox1_meta=""; vox2_meta=""; trials_dir=""
while [ $# -gt 0 ]; do
  case "$1" in
    --nj) nj=$2; shift 2 ;;
    --config) config=$2; shift 2 ;;
    -o|--override) overrides+=(-o "$2"); shift 2 ;;
    --vox1-meta) vox1_meta=$2; shift 2 ;;
    --vox2-meta) vox2_meta=$2; shift 2 ;;
    --trials-dir) trials_dir=$2; shift 2 ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    -*) echo "$0: unknown option $1 (see --help)" >&2; exit 1 ;;
    *) break ;;
  esac
done

if [ -n "$config" ] && [ $# -eq 1 ]; then
  get() { python -m pipeline config-get --config "$config" ${overrides[@]+"${overrides[@]}"} "$@"; }
  vox1_root=$(get voxceleb.voxceleb1_root); vox2_root=$(get voxceleb.voxceleb2_root); data=$1
  [ -n "$vox1_meta" ] || vox1_meta=$(get --default "" voxceleb.vox1_meta)
  [ -n "$vox2_meta" ] || vox2_meta=$(get --default "" voxceleb.vox2_meta)
  [ -n "$trials_dir" ] || trials_dir=$(get --default "" voxceleb.trials_dir)
  [ -n "$vox1_root" ] && [ -n "$vox2_root" ] || {
    echo "$0: set voxceleb.voxceleb1_root and voxceleb.voxceleb2_root in $config (or -o key=path)" >&2; exit 1; }
elif [ -z "$config" ] && [ $# -eq 3 ]; then
  vox1_root=$1; vox2_root=$2; data=$3
else
  echo "usage: $0 [--nj N] <voxceleb1-root> <voxceleb2-root> <data-dir>" >&2
  echo "   or: $0 --config conf/voxceleb.yaml [-o key=value]... [--nj N] <data-dir>" >&2
  exit 1
fi

prepared() { [ -f "$1/spk2gender" ] && python -m pipeline validate-data-dir --no-files "$1" >/dev/null 2>&1; }

if prepared "$data/voxceleb2_dev"; then
  echo "$0: $data/voxceleb2_dev is already prepared"
else
  python "$here/make_voxceleb2.py" --root "$vox2_root" ${vox2_meta:+--meta "$vox2_meta"} --subset dev --nj "$nj" \
    --out "$data"
fi
if prepared "$data/voxceleb1"; then
  echo "$0: $data/voxceleb1 is already prepared"
else
  python "$here/make_voxceleb1.py" --root "$vox1_root" ${vox1_meta:+--meta "$vox1_meta"} \
    ${trials_dir:+--trials-dir "$trials_dir"} --nj "$nj" --out "$data"
fi

# Later stages read <data>/train; a link keeps one copy of the tables (and of what stage 1 adds to them).
if [ -e "$data/train" ] && [ ! -L "$data/train" ]; then
  echo "$0: $data/train exists and is not a link to voxceleb2_dev (another corpus?); move it away first" >&2
  exit 1
fi
ln -sfn voxceleb2_dev "$data/train"
