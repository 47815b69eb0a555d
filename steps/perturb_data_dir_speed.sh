#!/usr/bin/env bash
# Stage 0 (optional): a training data dir plus copies at other speeds as new speakers (sox `speed`; ids prefixed
# sp0.9-, sp1.1-), as Kaldi's utils/perturb_data_dir_speed.sh. Any Kaldi data dir with a wav.scp, e.g.
#   steps/perturb_data_dir_speed.sh --factors "0.9 1.1" data/train data/train_sp
#   steps/perturb_data_dir_speed.sh --config conf/voxceleb.yaml data/voxceleb2_dev data/voxceleb2_dev_sp
# Options and arguments: steps/perturb_data_dir_speed.sh --help
. "$(dirname "$0")/../path.sh"
exec python -m pipeline perturb-speed "$@"
