#!/usr/bin/env bash
# Stage 0 (optional): an augmented copy of a training data dir (reverb, noise, music, babble, as Kaldi's voxceleb v2)
# and the union of the two, in --nj jobs; the config's `augment:` section says how.
#   steps/augment_data_dir.sh --config conf/demo.yaml --nj 2 data/train data/train_aug audio/train_aug \
#     data/train_combined
# Options and arguments: steps/augment_data_dir.sh --help
. "$(dirname "$0")/../path.sh"
exec python -m pipeline augment-data-dir "$@"
