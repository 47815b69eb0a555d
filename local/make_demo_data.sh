#!/usr/bin/env bash
# Stage 0 of the demo recipe: make sure the voices are installed, then build the embedded demo corpus (synthesised
# and recorded people) and write the Kaldi data dirs <data-dir>/train and <data-dir>/test (with trials_O, trials_H
# trials_real and trials_synth). The config's `demo:` section says how big; a rerun with the same settings does nothing.
#
# Usage: local/make_demo_data.sh --config conf/demo.yaml [-o key=value]... [--nj N] [--install true|false]
#                                <corpus-dir> <data-dir>
#   e.g. local/make_demo_data.sh --config conf/demo.yaml --nj 2 corpus/demo data
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
nj=2; install=true; config=""; overrides=()
while [ $# -gt 0 ]; do
  case "$1" in
    --nj) nj=$2; shift 2 ;;
    --install) install=$2; shift 2 ;;   # false: use whatever voices are installed, without checking for the others
    --config) config=$2; shift 2 ;;
    -o|--override) overrides+=(-o "$2"); shift 2 ;;
    -h|--help) sed -n '2,9s/^# \{0,1\}//p' "$0"; exit 0 ;;
    -*) echo "$0: unknown option $1 (see --help)" >&2; exit 1 ;;
    *) break ;;
  esac
done
if [ $# != 2 ] || [ -z "$config" ]; then
  sed -n '2,9s/^# \{0,1\}//p' "$0" >&2
  exit 1
fi
corpus_dir=$1
data_dir=$2

if $install; then
  "$here/install_demo_voices.sh"
fi
. "$here/../path.sh"
get() { python -m pipeline config-get --config "$config" ${overrides[@]+"${overrides[@]}"} "$@"; }
recordings=$(get --default true demo.recordings)
python "$here/make_demo_corpus.py" --nj "$nj" --seed "$(get seed)" --out-dir "$corpus_dir" --data-dir "$data_dir" \
  --utts-per-spk "$(get --default 20 demo.utts_per_spk)" --test-utts-per-spk "$(get --default 20 demo.test_utts_per_spk)" \
  --test-fraction "$(get --default 0.3 demo.test_fraction)" --recorded-test "$(get --default 0 demo.recorded_test)" \
  --package-cache "$(get --default corpus/packages demo.package_cache)" \
  "$([ "$recordings" = true ] && echo --recordings || echo --no-recordings)"
