#!/usr/bin/env bash
# A rehearsal of conf/voxceleb.yaml, stages 0-6, in minutes on a CPU, before a GPU box spends hours on VoxCeleb.
#
#   local/rehearse_voxceleb.sh [--nj N] [--stage N] [--stop-stage N] [--override "k=v ..."] DIR
#
# Builds DIR/corpora (local/make_rehearsal_corpora.py): VoxCeleb1 (wav), VoxCeleb2 (m4a), RIRS_NOISES and MUSAN in
# their distributed layouts, with real synthesised audio, 12 + 12 speakers. Then runs the paper's config on them in
# DIR/recipe, a recipe directory linking this checkout's code (data/, exp/, mfcc/, lgp/ and corpus/ land there, never
# in the checkout), with overrides that change only sizes and paths (`overrides` below): every code path of
# conf/voxceleb.yaml runs, 512 Gaussians on 80 MFCC, compressed archives, the paper-size networks, dGMM's two steps,
# augmentation from RIRS_NOISES and MUSAN, AS-Norm, PLDA and the O, E and H lists. Rerunning redoes only what
# changed (each stage skips finished work); remove DIR/recipe to start over. --override: more `key=value` overrides,
# after the rehearsal's own (e.g. `models.resnet34.train.large_margin=null` to leave a phase out).
# Needs ffmpeg (the recipe decodes VoxCeleb2's m4a through it) and flite or MBROLA voices
# (local/install_demo_voices.sh). Results: DIR/recipe/exp/results.md and exp/<model>/scores/*.json.
set -euo pipefail
here=$(cd "$(dirname "$(readlink -f "$0")")" && pwd)
repo=$(dirname "$here")

nj=2; stage=0; stop_stage=6; override=""
option_names="nj stage stop_stage override"; usage_args="DIR   (what it does: the comments atop $0)"
. "$repo/steps/parse_options.sh"
if [ $# -ne 1 ]; then
  echo "usage: $0 [--nj N] [--stage N] [--stop-stage N] [--override \"k=v ...\"] DIR" >&2
  exit 1
fi
mkdir -p "$1"
dir=$(cd "$1" && pwd -P)
case "$dir/" in
  "$(cd "$repo" && pwd -P)/"*) echo "$0: $dir is inside the checkout $repo; rehearse outside it" >&2; exit 1 ;;
esac
. "$repo/path.sh"
command -v ffmpeg >/dev/null || {
  echo "$0: ffmpeg not found; the recipe decodes VoxCeleb2's m4a files through it (Debian: apt-get install" \
       "--no-install-recommends ffmpeg)" >&2; exit 1; }

start=$(date +%s)
corpora=$dir/corpora
python "$here/make_rehearsal_corpora.py" --out "$corpora" --nj "$nj"

recipe=$dir/recipe
mkdir -p "$recipe"
for name in run.sh path.sh steps local pipeline conf; do
  ln -sfn "$repo/$name" "$recipe/$name"
done

# Paths: where the corpora are. Sizes: what makes minutes of hours; every value the paper config computes with is
# kept (features, GMM sizes, networks, heads, margins, the back end). The training set is 24 utterances plus their
# augmented copies: one epoch of 3 batches of 16 half-second crops for each network at its paper size (and for
# dGMM's fusion step, and for each large-margin phase on 1 s crops), two EM iterations of each 512-component GMM,
# two 1 s crops per test utterance, 50 bootstrap replicates.
overrides=(
  voxceleb.voxceleb1_root="$corpora/VoxCeleb1"
  voxceleb.voxceleb2_root="$corpora/VoxCeleb2"
  augment.rirs_noises="$corpora/RIRS_NOISES"
  augment.musan="$corpora/musan"
  gmm.max_iter=2
  train.epochs=1
  train.batch_size=16
  train.crop_frames=50
  train.num_workers=1
  train.fusion.epochs=1
  train.fusion.batch_size=16
  train.large_margin.epochs=1
  train.large_margin.batch_size=16
  train.large_margin.crop_frames=100
  extract.num_crops=2
  extract.crop_frames=100
  scoring.bootstrap_replicates=50
)
(cd "$recipe" && ./run.sh --config conf/voxceleb.yaml --stage "$stage" --stop-stage "$stop_stage" --nj "$nj" \
  --override "${overrides[*]} $override")
echo "$0: stages $stage-$stop_stage of conf/voxceleb.yaml in $(( $(date +%s) - start )) s;" \
     "results in $recipe/exp/results.md"
