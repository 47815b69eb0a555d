#!/usr/bin/env bash
# GMM-ResNext speaker verification (Yan et al., arXiv 2407.03135), Kaldi style.
#
#   ./run.sh                                   # every stage on the embedded demo corpus (CPU, minutes)
#   ./run.sh --config conf/voxceleb.yaml --stage 1 --stop-stage 3 --nj 32
#   ./run.sh --stage 1 --stop-stage 6 --eval-data /path/to/kaldi_dir   # evaluate your corpus, no retraining
#   ./run.sh --config conf/my.yaml --stage 1 --init-from /path/to/exp/gmm_resnext   # fine-tune it on your people
#   ./run.sh --stage 4 --stop-stage 4 --gpus 8 --nnodes 2 --node-rank 0 --rdzv host-a:29500   # on each node
#
# Stages: 0 data, 1 MFCC+VAD, 2 GMMs, 3 LGP, 4 train, 5 embeddings, 6 scoring. Every stage reads and writes
# files only and skips work that is already done, so any range can be rerun.
set -euo pipefail
cd "$(dirname "$0")"

stage=0
stop_stage=6
config=conf/demo.yaml
nj=2
cmd=local          # job engine for stages 1, 3, 5: local, dask://host:port, slurm[:sbatch options]
gpus=1             # >1: stage 4 through torchrun (DDP), one process per GPU
nnodes=1           # >1: stage 4 on several nodes, the same command on each with its --node-rank
node_rank=0
rdzv=""            # HOST:PORT of node 0, for --nnodes > 1
eval_data=""       # a Kaldi data dir (wav.scp, utt2spk, trials) to evaluate with the trained models
override=""        # space-separated config overrides, e.g. "gmm.num_components=128 train.epochs=5"
init_from=""       # a trained model dir (exp/<model>): stage 4 fine-tunes it, stage 2 writes its GMMs
option_names="stage stop_stage config nj cmd gpus nnodes node_rank rdzv eval_data override init_from"
. steps/parse_options.sh

steps/install.sh
. ./path.sh
cfg=(--config "$config")
for o in $override; do cfg+=(-o "$o"); done
if [ -n "$init_from" ]; then cfg+=(-o "train.init_from=$init_from"); fi
# The names this script works with, from the config through pipeline/recipe_layout.py (one call): corpus, data,
# train_set, cohort_set (mean and AS-Norm cohort: clean training speech), gmm_set (the GMMs' training set),
# test_sets, gmms, lgp_gmms (the GMMs whose LGP maps some model reads), gmm_root, models, speed_perturb, augment
# (true when stage 0 writes the augmented copy), augment_mode, augment_source, augment_set, verify_inputs. With
# augment.mode online, train_set is the clean set: the loader augments it, and no stage makes train_combined.
vars=$(python -m pipeline recipe-vars "${cfg[@]}")
eval "$vars"
# every stage re-hashes the archives it reads when this is true (pipeline/utils/checksums.py)
export GMM_RESNEXT_VERIFY_INPUTS=$verify_inputs
if [ -n "$eval_data" ]; then
  # A user's corpus: features under the trained GMMs, embeddings and scores; nothing is retrained.
  test_sets=$(steps/import_eval_data.sh "${cfg[@]}" "$eval_data")
  train_sets=""
  mfcc_sets=""
  cfg+=(-o features.resample=true)
else
  train_sets=$(echo "$train_set $cohort_set" | tr ' ' '\n' | sort -u | tr '\n' ' ')
  mfcc_sets=$(echo "$train_sets $gmm_set" | tr ' ' '\n' | sort -u | tr '\n' ' ')
fi
run_stage() { [ "$stage" -le "$1" ] && [ "$stop_stage" -ge "$1" ]; }

if run_stage 0 && [ -z "$eval_data" ]; then
  echo "== stage 0: data preparation ($corpus)"
  case $corpus in
    demo) local/make_demo_data.sh "${cfg[@]}" --nj "$nj" corpus/demo "$data" ;;
    *) local/make_${corpus}_data.sh "${cfg[@]}" --nj "$nj" "$data" ;;
  esac
  if [ -n "$speed_perturb" ]; then   # train + sp0.9-, sp1.1- copies as new speakers
    steps/perturb_data_dir_speed.sh "${cfg[@]}" "$data/train" "$data/$augment_source"
  fi
  if [ "$augment" = true ]; then   # Kaldi's train_aug; data.train is the union (augment.mode online: no copy)
    steps/augment_data_dir.sh "${cfg[@]}" --nj "$nj" --cmd "$cmd" \
      "$data/$augment_source" "$data/$augment_set" "corpus/$augment_set" "$data/$train_set"
  fi
fi

if run_stage 1; then
  echo "== stage 1: MFCC + VAD"
  for set in $mfcc_sets $test_sets; do
    steps/make_mfcc.sh "${cfg[@]}" --nj "$nj" --cmd "$cmd" "$data/$set" mfcc
  done
fi

if run_stage 2 && [ -z "$eval_data" ]; then
  echo "== stage 2: GMMs ($gmms, on $gmm_set)"
  steps/fit_gmm.sh "${cfg[@]}" "$data/$gmm_set" "$gmm_root"
fi

if run_stage 3; then
  echo "== stage 3: LGP archives ($lgp_gmms)"
  for gmm in $lgp_gmms; do
    for set in $train_sets $test_sets; do
      steps/make_lgp.sh "${cfg[@]}" --nj "$nj" --cmd "$cmd" "$data/$set" "$gmm_root/$gmm" lgp/$gmm \
        "$data/${set}_lgp_$gmm"
    done
  done
fi

if run_stage 4 && [ -z "$eval_data" ]; then
  echo "== stage 4: training ($models)"
  for model in $models; do
    # --resume: a run killed half-way continues from its last epoch checkpoint (of the same config)
    steps/train.sh --gpus "$gpus" --nnodes "$nnodes" --node-rank "$node_rank" --rdzv "$rdzv" "${cfg[@]}" \
      --model "$model" --exp-dir "exp/$model" --resume
  done
fi

if run_stage 5; then
  echo "== stage 5: embeddings"
  for model in $models; do
    for set in $test_sets; do   # into exp/<model>/embeddings/<set>
      steps/extract.sh "${cfg[@]}" --exp-dir "exp/$model" --data-dir "$data/$set" --nj "$nj" --cmd "$cmd"
    done
    # the cohort set gives the embedding mean and the AS-Norm cohort: full-utterance vectors suffice
    steps/extract.sh "${cfg[@]}" --exp-dir "exp/$model" --data-dir "$data/$cohort_set" --nj "$nj" --cmd "$cmd" \
      --no-crops
  done
fi

if run_stage 6; then
  echo "== stage 6: scoring"
  steps/score.sh "${cfg[@]}" --exp-root exp --models "$models" --sets "$test_sets" --cohort-set "$cohort_set"
fi
