#!/usr/bin/env bash
# Stage 0 of the demo recipe: make sure the voices are installed, then synthesise the embedded demo corpus and write
# the Kaldi data dirs <data-dir>/train and <data-dir>/test (with trials_O and trials_H). A rerun with the same
# arguments does nothing.
#
# Usage: local/make_demo_data.sh [--nj N] [--seed S] [--install true|false] <corpus-dir> <data-dir>
#   e.g. local/make_demo_data.sh --nj 2 corpus/demo data
set -euo pipefail

nj=2
seed=0
install=true   # false: use whatever voices are installed, without checking for the others
option_names="nj seed install"
usage_args="<corpus-dir> <data-dir>"
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/../steps/parse_options.sh"
if [ $# != 2 ]; then
  sed -n '2,7s/^# \{0,1\}//p' "$0" >&2
  exit 1
fi
corpus_dir=$1
data_dir=$2

if $install; then
  "$here/install_demo_voices.sh"
fi
. "$here/../path.sh"
python "$here/make_demo_corpus.py" --nj "$nj" --seed "$seed" \
  --out-dir "$corpus_dir" --data-dir "$data_dir"
