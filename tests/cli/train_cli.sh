#!/usr/bin/env bash
# trit-train and trit-inspect as a user meets them: flags, exit codes, error lines, output
# files, resume, Ctrl-C. Usage: train_cli.sh BIN_DIR (holding trit-train and trit-inspect). Runs on a tiny dataset in Fashion-MNIST's exact
# on-disk format (gzipped IDX) that it writes itself.
set -u
train=$1/trit-train
inspect=$1/trit-inspect
predict=$1/trit-predict
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

# Big-endian 32-bit integer as raw bytes.
be32() { printf "\\x$(printf %02x $(($1 >> 24 & 255)))\\x$(printf %02x $(($1 >> 16 & 255)))\\x$(printf %02x $(($1 >> 8 & 255)))\\x$(printf %02x $(($1 & 255)))"; }
# write_idx DIR PREFIX COUNT: images (random pixels) and labels (i mod 10).
write_idx() {
  { printf '\x00\x00\x08\x03'; be32 "$3"; be32 28; be32 28; head -c $(($3 * 784)) /dev/urandom; } \
    | gzip > "$1/$2-images-idx3-ubyte.gz"
  { printf '\x00\x00\x08\x01'; be32 "$3"; for ((i = 0; i < $3; i++)); do printf "\\x0$((i % 10))"; done; } \
    | gzip > "$1/$2-labels-idx1-ubyte.gz"
}
data=$work/data
mkdir -p "$data"
write_idx "$data" train 256
write_idx "$data" t10k 64

# expect CODE DESCRIPTION -- command...: runs it, checks the exit code, and for errors that
# stderr has a line starting with "error: ".
expect() {
  local code=$1 what=$2
  shift 3
  "$@" > "$work/out" 2> "$work/err"
  local got=$?
  [ "$got" -eq "$code" ] || { fail "$what: exit $got, expected $code"; sed 's/^/  | /' "$work/err" | tail -5; return; }
  if [ "$code" -ne 0 ] && [ "$code" -ne 130 ]; then
    grep -q "^error: " "$work/err" || fail "$what: no 'error: ' line on stderr"
  fi
  echo "ok: $what"
}

expect 0 "--help" -- "$train" --help
grep -q -- "--dataset" "$work/out" || fail "--help does not list --dataset"
expect 2 "bad flag value" -- "$train" --epochs abc
expect 2 "unknown flag" -- "$train" --no-such-flag
expect 2 "out-of-range value" -- "$train" --batch 0
expect 1 "unknown dataset" -- "$train" --dataset nope --out "$work/r0"
expect 1 "missing data folder" -- "$train" --data "$work/missing" --out "$work/r0"
expect 1 "unknown model" -- "$train" --data "$data" --model nope --out "$work/r0"

mkdir -p "$work/truncated"
cp "$data"/* "$work/truncated/"
gzip -dc "$data/train-images-idx3-ubyte.gz" | head -c 5000 | gzip > "$work/truncated/train-images-idx3-ubyte.gz"
expect 1 "truncated images file" -- "$train" --data "$work/truncated" --out "$work/r0"
grep -q "train-images-idx3-ubyte.gz" "$work/err" || fail "truncated file error does not name the file"

run=$work/run
expect 0 "train one epoch" -- "$train" --data "$data" --epochs 1 --batch 32 --out "$run" --threads 2
tail -n 1 "$work/out" | grep -q '^{.*"test_accuracy": [0-9.]*.*"model_bytes": [0-9]*.*"trit_compression_ratio": [0-9.]*.*}$' \
  || fail "last line is not the JSON summary: $(tail -n 1 "$work/out")"
for f in checkpoint.ckpt log.csv curves.png; do [ -s "$run/$f" ] || fail "missing $run/$f"; done
[ "$(wc -l < "$run/log.csv")" -eq 2 ] || fail "log.csv should hold a header and one row"

expect 0 "resume to two epochs" -- "$train" --data "$data" --epochs 2 --batch 32 --out "$run" --resume "$run/checkpoint.ckpt"
grep -q "resumed from" "$work/err" || fail "resume does not say so"
[ "$(wc -l < "$run/log.csv")" -eq 3 ] || fail "log.csv should hold two rows after resuming"

expect 0 "train with a ternary quantizer" -- "$train" --data "$data" --epochs 1 --batch 32 --quant ptq --sparsity 0.6 --out "$work/ptq"
tail -n 1 "$work/out" | grep -q '"quant": "ptq", "sparsity": 0.6' || fail "ptq summary: $(tail -n 1 "$work/out")"
for f in model.safetensors model.trit weights.png; do [ -s "$work/ptq/$f" ] || fail "missing $work/ptq/$f"; done
# The run reads model.trit back and runs it on the compressed kernels: same predictions.
tail -n 1 "$work/out" | grep -q '"trit_prediction_differences": 0, "trit_max_logit_relative_difference": [0-9.]*e-0[5-9]' \
  || fail "model.trit does not reproduce the trained network: $(tail -n 1 "$work/out")"
expect 0 "train with focused power-of-two, argmax assignment" -- "$train" --data "$data" --epochs 1 --batch 32 --quant fq --fq-assignment argmax --out "$work/fq"
tail -n 1 "$work/out" | grep -q '"quant": "fq".*"trit_prediction_differences": 0' || fail "fq summary: $(tail -n 1 "$work/out")"
expect 2 "bad --reinit" -- "$train" --data "$data" --quant hq --reinit sometimes --out "$work/r0"
expect 2 "bad --override" -- "$train" --data "$data" --quant ptq --override 'conv2.weight=2' --out "$work/r0"
expect 0 "train with per-name overrides" -- "$train" --data "$data" --epochs 1 --batch 32 --quant ptq --sparsity 0.9 \
  --override 'conv2.weight=0.5' --override 'fc2.weight=fp32' --out "$work/over"
"$inspect" "$work/over/model.trit" > "$work/over.txt"
grep -q "^conv2.weight .* ternary[_a-z0-9]* *50.00%" "$work/over.txt" || fail "--override did not set conv2's sparsity: $(grep conv2.weight "$work/over.txt")"
grep -q "^fc2.weight .* f32 " "$work/over.txt" || fail "--override did not keep fc2 FP32: $(grep fc2.weight "$work/over.txt")"
expect 0 "trit-inspect of the trained model" -- "$inspect" "$work/ptq/model.trit"
bytes=$(stat -c %s "$work/ptq/model.trit")
grep -q "^file bytes: *$bytes " "$work/out" || fail "trit-inspect does not report the file's $bytes bytes"
grep -q "ternary" "$work/out" || fail "trit-inspect shows no ternary tensor"
expect 1 "trit-inspect of a missing file" -- "$inspect" "$work/missing.trit"
expect 1 "trit-inspect of a checkpoint" -- "$inspect" "$work/ptq/checkpoint.ckpt"
expect 2 "trit-inspect without a file" -- "$inspect"

# trit-predict runs the .trit file on the compressed kernels; the file names the model.
header='{"input":{"dtype":"F32","shape":[2,1,28,28],"data_offsets":[0,6272]}}'
le64() { printf "\\x$(printf %02x $(($1 & 255)))\\x$(printf %02x $(($1 >> 8 & 255)))\\x00\\x00\\x00\\x00\\x00\\x00"; }
{ le64 ${#header}; printf '%s' "$header"; head -c 6272 /dev/zero; } > "$work/input.safetensors"
expect 0 "trit-predict from model.trit" -- "$predict" --weights "$work/ptq/model.trit" --input "$work/input.safetensors" --output "$work/logits.safetensors"
[ -s "$work/logits.safetensors" ] || fail "trit-predict wrote no logits"
expect 1 "trit-predict from safetensors without --model" -- "$predict" --weights "$work/ptq/model.safetensors" --input "$work/input.safetensors" --output "$work/l2.safetensors"
expect 1 "trit-predict from a corrupt input" -- "$predict" --weights "$work/ptq/model.trit" --input "$work/ptq/model.trit" --output "$work/l3.safetensors"
# trit-predict against PyTorch: torchvision-style weights and the logits PyTorch computed for
# them (tests/reference/make_interop.py), checked by trit-predict --expect itself.
ref=$(dirname "$0")/../reference/interop
expect 0 "trit-predict matches PyTorch's resnet20 logits" -- "$predict" --model resnet20 --num-classes 10 \
  --weights "$ref/resnet20.safetensors" --input "$ref/resnet20_io.safetensors" --output "$work/r20.safetensors" \
  --expect "$ref/resnet20_io.safetensors"
grep -q "^match: " "$work/out" || fail "trit-predict --expect printed no match line"
expect 0 "trit-predict matches PyTorch's mobilenet_v2 logits" -- "$predict" --model mobilenet_v2 --width 0.25 \
  --weights "$ref/mobilenet_v2.safetensors" --input "$ref/mobilenet_v2_io.safetensors" --output "$work/mb.safetensors" \
  --expect "$ref/mobilenet_v2_io.safetensors"
expect 1 "trit-predict --expect with other logits" -- "$predict" --model mobilenet_v2 --width 0.25 --small-input \
  --weights "$ref/mobilenet_v2.safetensors" --input "$ref/mobilenet_v2_io.safetensors" --output "$work/mb.safetensors" \
  --expect "$ref/mobilenet_v2_io.safetensors"
grep -q "MISMATCH" "$work/out" || fail "a mismatch does not say MISMATCH"
expect 1 "resume a ptq checkpoint without --quant" -- "$train" --data "$data" --epochs 2 --out "$work/r2" --resume "$work/ptq/checkpoint.ckpt"
expect 2 "sparsity out of range" -- "$train" --quant ptq --sparsity 1.5

cp "$run/checkpoint.ckpt" "$work/bad.ckpt"
printf 'garbage' | dd of="$work/bad.ckpt" bs=1 seek=100 conv=notrunc 2> /dev/null
expect 1 "corrupt checkpoint" -- "$train" --data "$data" --epochs 3 --out "$work/r1" --resume "$work/bad.ckpt"
expect 1 "checkpoint of another model's shape" -- "$train" --data "$data" --epochs 3 --out "$work/r1" --resume /dev/null

# Ctrl-C: finish the batch, save a checkpoint, say how to resume, exit 130.
"$train" --data "$data" --epochs 100000 --batch 8 --out "$work/int" > "$work/out" 2> "$work/err" &
pid=$!
sleep 3
kill -INT $pid
wait $pid
code=$?
[ $code -eq 130 ] || fail "Ctrl-C: exit $code, expected 130"
grep -q "resume" "$work/err" || fail "Ctrl-C: no resume hint"
[ -s "$work/int/checkpoint.ckpt" ] || fail "Ctrl-C: no checkpoint"
[ $code -eq 130 ] && echo "ok: Ctrl-C"

echo "$((failures == 0 ? 1 : 0)) passed, $failures failed"
[ $failures -eq 0 ]
