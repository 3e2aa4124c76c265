#!/usr/bin/env bash
# The device check: proves pgolf on one CUDA GPU in one call of under nine
# minutes. Run in the repository root with the GPU bundle beside it
# (scripts/gpu/bundle.sh builds gpu-bundle/ on any x86-64 machine):
#
#   bash scripts/gpu/check.sh            # logs and summary.json under $OUT
#
# Each phase has its own time box, so a phase that fails or hangs leaves the
# others' results; summary.json lists every phase's status, seconds and log.
#   doctor      GPU, CUDA runtime, the SDPA kernel chosen with and without a mask
#   cuda_tests  pgolf_tests --gtest_filter='Cuda*' (CPU vs CUDA of every preset,
#               golden gradients, Newton-Schulz bf16, loader pinning, artifact)
#   nccl        `pgolf train --nproc 1`: one launched rank, NCCL, torchrun's env
#   speed       30 timed steps of baseline (T=1024) and pr1406 (T=2048) at the
#               8xH100 runs' per-GPU batch, beside the scripts in PyTorch
#   train       a baseline run (80 s of training, then the export and its
#               round-trip score: under 3 minutes) on the bundle's shards
set -uo pipefail
cd "$(dirname "$0")/../.."
export OUT=${OUT:-$PWD/gpu-check}
mkdir -p "$OUT"
export BUNDLE=${PGOLF_BUNDLE:-$PWD/gpu-bundle}
[[ -x $BUNDLE/bin/pgolf ]] || { echo "no bundle at $BUNDLE (scripts/gpu/bundle.sh)" >&2; exit 2; }
# shellcheck source=/dev/null
source "$BUNDLE/activate.sh"
export PGOLF_PYTHON=${PGOLF_PYTHON:-python3} PGOLF_QUIET=1
export PGOLF_PEER_HARNESS=$PWD/bench/peer_step.py  # the checkout's (the bundle has none)
DATA=$BUNDLE/shared/data
export DATA_PATH=$DATA/shards TOKENIZER_PATH=$DATA/tokenizers/fineweb_1024_bpe.model
ONLY=${PGOLF_CHECK_PHASES:-doctor,cuda_tests,nccl,speed,train}
# cpu: a dry run of the phases' command lines on a machine without a GPU.
export DEVICE=${PGOLF_CHECK_DEVICE:-cuda}

SUMMARY=()
phase() {  # phase NAME SECONDS COMMAND...
  local name=$1 seconds=$2
  shift 2
  [[ ",$ONLY," == *",$name,"* ]] || return 0
  echo "== $name (at most ${seconds}s)"
  local start=$SECONDS rc
  # bash -c: a phase may be one of the functions below (exported).
  timeout --kill-after=10 "$seconds" bash -c '"$@"' _ "$@" >"$OUT/$name.log" 2>&1
  rc=$?
  local status=passed
  ((rc == 124 || rc == 137)) && status=timed_out
  ((rc != 0 && rc != 124 && rc != 137)) && status=failed
  echo "   $status (rc $rc) in $((SECONDS - start))s"
  tail -n 5 "$OUT/$name.log" | sed 's/^/   | /'
  SUMMARY+=("{\"phase\": \"$name\", \"status\": \"$status\", \"rc\": $rc, \"seconds\": $((SECONDS - start)), \"log\": \"$name.log\"}")
}

phase doctor 30 pgolf doctor

phase cuda_tests 100 pgolf_tests --gtest_filter='Cuda*' --gtest_output="json:$OUT/cuda_tests.json"

nccl_run() {
  local backend=nccl
  [[ $DEVICE == cpu ]] && backend=gloo
  pgolf train --nproc 1 --preset baseline --device "$DEVICE" --run-dir "$OUT/runs" --run-id nccl \
    --num-layers 2 --model-dim 128 --num-heads 4 --num-kv-heads 2 --iterations 20 \
    --train-batch-tokens 16384 --train-seq-len 256 --warmup-steps 2 --val-loss-every 10 \
    --val-max-tokens 65536 --max-wallclock-seconds 0 &&
    grep -q "process_group:$backend" "$OUT/runs/nccl/train.log"
}
export -f nccl_run
phase nccl 45 nccl_run

speed() {
  local peers=$BUNDLE/peers
  # The 8xH100 runs' batch per GPU: baseline 524,288 / 8 at T=1,024; #1406's
  # 786,432 / 8 at T=2,048.
  local baseline=(--presets baseline --batch-tokens 65536)
  local pr1406=(--presets pr1406 --batch-tokens 98304)
  [[ -f $peers/train_gpt.py ]] && baseline+=(--compare "$peers/train_gpt.py" --repeats 1)
  [[ -f $peers/train_gpt_pr1406.py ]] && pr1406+=(--compare "$peers/train_gpt_pr1406.py" --repeats 1)
  # Training steps only (--eval-batches 0: no second compiled graph).
  pgolf bench --device "$DEVICE" --steps 30 --warmup 5 --eval-batches 0 "${baseline[@]}" &&
    pgolf bench --device "$DEVICE" --steps 30 --warmup 5 --eval-batches 0 "${pr1406[@]}"
}
export -f speed
phase speed 200 speed

train_run() {
  pgolf train --preset baseline --device "$DEVICE" --run-dir "$OUT/runs" --run-id baseline \
    --max-wallclock-seconds 80 --val-loss-every 0
}
export -f train_run
phase train 150 train_run

{
  echo "{\"device\": \"$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)\","
  echo " \"torch\": \"$(${PGOLF_PYTHON} -c 'import torch; print(torch.__version__)' 2>/dev/null)\","
  echo " \"phases\": ["
  for i in "${!SUMMARY[@]}"; do
    sep=","
    ((i == ${#SUMMARY[@]} - 1)) && sep=""
    echo "  ${SUMMARY[$i]}$sep"
  done
  echo " ]}"
} >"$OUT/summary.json"
cat "$OUT/summary.json"
grep -q '"status": "\(failed\|timed_out\)"' "$OUT/summary.json" && exit 1
exit 0
