#!/usr/bin/env bash
# The quantizer experiments of docs/results.md: ResNet-20 on Fashion-MNIST, an FP32 baseline,
# then PTQ, HQ and focused power-of-two quantization at two sparsities each, every quantized
# run starting from the FP32 checkpoint as the papers do. Each run's last JSON line goes into
# OUT/results.jsonl; bench/results_table.py turns that into the markdown table.
#
#   bash bench/quant_experiments.sh OUT [--baseline-epochs N] [--epochs N] [--train-limit N]
#                                       [--sparsities "0.9 0.7"] [--quants "ptq hq fq"]
#
# Defaults are the full experiment (full training set). Smaller settings give a quick run;
# the table records the settings of every row. On a machine with other work running, export
# OMP_WAIT_POLICY=passive: spinning OpenMP threads otherwise slow training 5-20x.
set -euo pipefail
out=${1:?usage: quant_experiments.sh OUT [--baseline-epochs N] [--epochs N] [--train-limit N] [--threads N] [--sparsities LIST] [--quants LIST]}
shift
baseline_epochs=10 epochs=6 limit=0 threads=2 model=resnet20
sparsities="0.7 0.9" quants="ptq hq fq"
while (($#)); do
  case $1 in
    --baseline-epochs) baseline_epochs=$2; shift 2 ;;
    --epochs) epochs=$2; shift 2 ;;
    --train-limit) limit=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --model) model=$2; shift 2 ;;
    --sparsities) sparsities=$2; shift 2 ;;
    --quants) quants=$2; shift 2 ;;
    *) echo "error: unknown flag $1" >&2; exit 2 ;;
  esac
done
bin=${TRIT_BIN:-$(dirname "$0")/../build/bin}  # TRIT_BIN: another build's bin/
mkdir -p "$out"
results=$out/results.jsonl

run() {  # run NAME FLAGS...: train, keep the log, append the summary with the settings
  local name=$1
  shift
  echo "=== $name: trit-train $*" >&2
  local start=$SECONDS
  "$bin/trit-train" --model "$model" --dataset fashion-mnist --threads "$threads" \
    --train-limit "$limit" --out "$out/$name" "$@" > "$out/$name.log" 2> "$out/$name.err"
  local summary
  summary=$(tail -n 1 "$out/$name.log")
  echo "${summary%\}}, \"run\": \"$name\", \"flags\": \"$*\", \"train_limit\": $limit, \"wall_seconds\": $((SECONDS - start))}" >> "$results"
  echo "$summary" >&2
}

# The baseline once: a re-run of the script reuses it (and its checkpoint).
grep -q '"run": "fp32"' "$results" 2> /dev/null ||
  run fp32 --epochs "$baseline_epochs" --lr 0.1 --weight-decay 5e-4
for sparsity in $sparsities; do
  for quant in $quants; do
    grep -q "\"run\": \"$quant-$sparsity\"" "$results" 2> /dev/null && continue  # done before
    run "$quant-$sparsity" --quant "$quant" --sparsity "$sparsity" --bits 4 --epochs "$epochs" \
      --lr 0.02 --pretrained "$out/fp32/checkpoint.ckpt"
  done
done
/usr/bin/python3 "$(dirname "$0")/results_table.py" "$results"
