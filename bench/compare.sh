#!/usr/bin/env bash
# bench/compare.sh: trit-bench-train beside the same models in Debian's PyTorch
# (bench/train_torch_bench.py), same threads and batch, and the ratios trit / PyTorch.
#
#   bench/compare.sh [BUILD_DIR]        (default: build; needs bin/trit-bench-train there)
#
# Environment: THREADS (default "1 2"), BATCH (64), REPS (5, median of that many timed steps),
# ROUNDS (1: with more, trit and PyTorch alternate that many times and each side keeps its
# best throughput, which makes the ratio less sensitive to other load on a shared machine),
# MODELS (default: the three of issue 5, each "name [flags]" separated by ';'),
# PYTHON (/usr/bin/python3, Debian's interpreter with python3-torch).
# Prints one Markdown table row per model and thread count: training and inference images/s
# and peak resident memory of trit and PyTorch, and trit / PyTorch for each (for memory,
# lower is better). The programs run one after the other, so ratios compare runs taken
# minutes apart on the same machine: check `uptime` for other load.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
build=${1:-build}
bench="$build/bin/trit-bench-train"
python=${PYTHON:-/usr/bin/python3}
threads_list=${THREADS:-"1 2"}
batch=${BATCH:-64}
reps=${REPS:-5}
models=${MODELS:-"resnet20;resnet18 --small-input;mobilenet_v2 --small-input"}

if [[ ! -x "$bench" ]]; then
  echo "compare.sh: $bench not found; build it with" >&2
  echo "  cmake -S . -B $build -DTRIT_BUILD_BENCH=ON && cmake --build $build --target trit-bench-train" >&2
  exit 1
fi

# field NAME LINE: the value of NAME=... in a result line
field() { sed -n "s/.*[[:space:]]$1=\([^[:space:]]*\).*/\1/p" <<<" $2"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
best() { awk -v a="$1" -v b="$2" 'BEGIN { print (a == "" || b > a) ? b : a }'; }

echo "load before: $(uptime)"
echo
echo "| model | threads | train trit | train torch | ratio | infer trit | infer torch | ratio | peak RSS trit MB | peak RSS torch MB | ratio |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
IFS=';' read -ra model_list <<<"$models"
for spec in "${model_list[@]}"; do
  read -ra args <<<"$spec"
  for t in $threads_list; do
    common=(--model "${args[@]}" --threads "$t" --batch "$batch" --reps "$reps")
    tt= pt= ti= pi= tm= pm=
    for ((r = 0; r < ${ROUNDS:-1}; ++r)); do
      ours=$("$bench" "${common[@]}")
      theirs=$("$python" "$here/train_torch_bench.py" "${common[@]}")
      tt=$(best "$tt" "$(field train_img_s "$ours")"); pt=$(best "$pt" "$(field train_img_s "$theirs")")
      ti=$(best "$ti" "$(field infer_img_s "$ours")"); pi=$(best "$pi" "$(field infer_img_s "$theirs")")
      tm=$(field peak_rss_mb "$ours"); pm=$(field peak_rss_mb "$theirs")
    done
    echo "| ${spec} | $t | $tt | $pt | $(ratio "$tt" "$pt") | $ti | $pi | $(ratio "$ti" "$pi") | $tm | $pm | $(ratio "$tm" "$pm") |"
  done
done
echo
echo "load after: $(uptime)"
