#!/usr/bin/env bash
# Copies a user's Kaldi data dir (wav.scp, utt2spk, trials*; any sample rate) into the config's data root under its
# own name, validated (errors name the user's file and line), never over a set of the recipe; prints that name.
# usage: steps/import_eval_data.sh --config conf/X.yaml [-o key=value]... <user-data-dir>
. "$(dirname "$0")/../path.sh"
exec python -m pipeline import-data-dir "$@"
