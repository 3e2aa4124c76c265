#!/usr/bin/env bash
# Checks the GPU bundle on this machine, without a GPU, the way the device
# will see it: the bundle copied into an empty folder, the torch of a clean
# environment only (PGOLF_PYTHON, default .venv-torch211's python), no build
# tree. Prints ldd (every library must resolve inside the bundle, the torch
# environment or the C/C++ runtime), then runs pgolf doctor, a short train ->
# artifact -> eval on the bundle's shards, and the CPU test subset.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUNDLE=${PGOLF_BUNDLE:-gpu-bundle}
PYTHON=${PGOLF_PYTHON:-$PWD/.venv-torch211/bin/python}
[[ -x $BUNDLE/bin/pgolf ]] || { echo "no bundle (scripts/gpu/bundle.sh)" >&2; exit 2; }
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cp -r "$BUNDLE" "$WORK/bundle"
cd "$WORK"
export PGOLF_PYTHON=$PYTHON
# shellcheck source=/dev/null
source bundle/activate.sh

echo "== ldd bin/pgolf"
ldd bundle/bin/pgolf | tee ldd.txt
if grep -q "not found" ldd.txt; then echo "unresolved libraries" >&2; exit 1; fi
# Outside the bundle and torch's environment only the C/C++ runtime may come.
site=$(readlink -f bundle/site)
outside=$(awk '/=> \//{print $3}' ldd.txt | xargs -n1 readlink -f |
  grep -v "^$WORK/bundle/\|^$site/" |
  grep -v '/lib\(c\|m\|dl\|rt\|pthread\|util\|stdc++\|gcc_s\)\.so\|ld-linux' || true)
[[ -z $outside ]] || { echo "libraries from the system: $outside" >&2; exit 1; }

# torch 2.11's libtorch.so carries a broken std::filesystem (pytorch#133437):
# libstdc++ must come before it in the load order.
needed=$(readelf -d bundle/bin/pgolf | awk '/NEEDED/{gsub(/[][]/, "", $5); print $5}')
first_torch=$(grep -n '^libtorch\|^libc10' <<<"$needed" | head -1 | cut -d: -f1)
stdcxx=$(grep -n '^libstdc++' <<<"$needed" | head -1 | cut -d: -f1)
[[ -n $stdcxx && $stdcxx -lt $first_torch ]] || { echo "libstdc++ is not loaded before LibTorch" >&2; exit 1; }
echo "load order: libstdc++ ($stdcxx) before LibTorch ($first_torch)"

echo "== pgolf doctor"
pgolf doctor --no-measure
echo "== train -> artifact -> eval (cpu, 30 s)"
export DATA_PATH=$PGOLF_SHARED/data/shards
export TOKENIZER_PATH=$PGOLF_SHARED/data/tokenizers/fineweb_1024_bpe.model
pgolf train --preset cpu --run-dir runs --run-id selftest --iterations 30 --max-wallclock-seconds 30 \
  --val-max-tokens 65536 --val-loss-every 0
pgolf eval runs/selftest/final_model.int8.pgolf --val-max-tokens 65536
echo "== CPU tests (the subset that needs no source tree)"
pgolf_tests --gtest_filter='AdamwStepForeach.*:CollectiveDevices.*:ConfigureThreads.*:GoldenParity.*:Gpt.*:MuonStep.*:NewtonSchulz*:ArtifactTest.*:Resume.*:Cuda*' \
  --gtest_brief=1
echo "selftest passed"
