#!/usr/bin/env bash
# Ablations of the choices each quantizer's header documents: every run fine-tunes the same
# pretrained FP32 ResNet-20 with one choice switched, everything else at its default.
#
#   bash bench/quant_ablations.sh OUT --pretrained CKPT [--epochs N] [--train-limit N]
#                                     [--sparsity S] [--threads N] [--seeds "1 2"]
#
#   ptq       default (refined STE on) | --no-refined-ste
#   hq        the paper's extras on (--reinit pruned --cosine-weight 1e-3) | only the
#             cosine term | only the reinitialisation | neither (the default)
#   fq        default (mode auto, sampled assignment)        | --fq-assignment argmax
#
# Each run's JSON summary goes into OUT/results.jsonl with its name and flags;
# bench/results_table.py OUT/results.jsonl --ablation prints the table of docs/results.md.
# CKPT is the checkpoint of an FP32 trit-train run of the same model (bench/quant_experiments.sh
# writes one as OUT/fp32/checkpoint.ckpt). On a busy machine export OMP_WAIT_POLICY=passive.
set -euo pipefail
usage="usage: quant_ablations.sh OUT --pretrained CKPT [--epochs N] [--train-limit N] [--sparsity S] [--threads N] [--seeds LIST]"
out=${1:?$usage}
shift
pretrained="" epochs=2 limit=10000 sparsity=0.9 threads=2 seeds=1 model=resnet20
while (($#)); do
  case $1 in
    --pretrained) pretrained=$2; shift 2 ;;
    --epochs) epochs=$2; shift 2 ;;
    --train-limit) limit=$2; shift 2 ;;
    --sparsity) sparsity=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --seeds) seeds=$2; shift 2 ;;
    --model) model=$2; shift 2 ;;
    *) echo "error: unknown flag $1" >&2; echo "$usage" >&2; exit 2 ;;
  esac
done
[ -n "$pretrained" ] || { echo "error: --pretrained CKPT is required" >&2; echo "$usage" >&2; exit 2; }
[ -f "$pretrained" ] || { echo "error: no checkpoint at $pretrained" >&2; exit 1; }
bin=${TRIT_BIN:-$(dirname "$0")/../build/bin}  # TRIT_BIN: another build's bin/
mkdir -p "$out"
results=$out/results.jsonl

run() {  # run NAME SEED FLAGS...: fine-tune, keep the log, append the summary with the settings
  local name=$1 seed=$2
  shift 2
  grep -q "\"run\": \"$name\", \"seed\": $seed," "$results" 2> /dev/null && return 0  # done before
  echo "=== $name (seed $seed): trit-train $*" >&2
  local start=$SECONDS
  "$bin/trit-train" --model "$model" --dataset fashion-mnist --threads "$threads" --seed "$seed" \
    --train-limit "$limit" --epochs "$epochs" --lr 0.02 --sparsity "$sparsity" \
    --pretrained "$pretrained" --out "$out/$name-$seed" "$@" > "$out/$name-$seed.log" 2> "$out/$name-$seed.err"
  local summary
  summary=$(tail -n 1 "$out/$name-$seed.log")
  echo "${summary%\}}, \"run\": \"$name\", \"seed\": $seed, \"flags\": \"$*\", \"train_limit\": $limit, \"wall_seconds\": $((SECONDS - start))}" >> "$results"
  echo "$summary" >&2
}

for seed in $seeds; do
  run ptq "$seed" --quant ptq
  run ptq-no-refined-ste "$seed" --quant ptq --no-refined-ste
  run hq-reinit-cosine "$seed" --quant hq --reinit pruned --cosine-weight 1e-3
  run hq-cosine "$seed" --quant hq --reinit none --cosine-weight 1e-3
  run hq-reinit "$seed" --quant hq --reinit pruned --cosine-weight 0
  run hq "$seed" --quant hq
  run fq "$seed" --quant fq --bits 4
  run fq-argmax "$seed" --quant fq --bits 4 --fq-assignment argmax
done
/usr/bin/python3 "$(dirname "$0")/results_table.py" "$results" --ablation
