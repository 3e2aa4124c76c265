#!/usr/bin/env bash
# The main job: set-up, default data, then the `cpu` preset through
# train -> int8 artifact -> evaluation of the artifact.
#
# Data: the challenge's FineWeb shards if they are in DATA_PATH (default
# ./data/datasets/fineweb10B_sp1024, tokenizer TOKENIZER_PATH); otherwise an
# offline corpus of real English prose shipped by Debian (the Python 3.11
# documentation, ~12 MB) is tokenized with a freshly trained sp1024 tokenizer
# (the challenge's settings) into ./data/datasets/pydocs_sp1024.
# Extra arguments go to `pgolf train` (e.g. --max-wallclock-seconds 60).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

DATA_PATH=${DATA_PATH:-./data/datasets/fineweb10B_sp1024}
TOKENIZER_PATH=${TOKENIZER_PATH:-./data/tokenizers/fineweb_1024_bpe.model}
if ! compgen -G "$DATA_PATH/fineweb_train_*.bin" >/dev/null || [[ ! -f $TOKENIZER_PATH ]]; then
  DATA_PATH=./data/datasets/pydocs_sp1024
  TOKENIZER_PATH=./data/tokenizers/pydocs_1024_bpe.model
  if ! compgen -G "$DATA_PATH/fineweb_train_*.bin" >/dev/null || [[ ! -f $TOKENIZER_PATH ]]; then
    echo "[main] FineWeb shards not found: building the offline default corpus"
    # SentencePiece skips "sentences" over 4192 bytes; documentation pages are long,
    # so raise the limit to let the tokenizer see every training document.
    ./build/pgolf data --default-corpus --out ./data --name pydocs --max-sentence-length 1000000
  fi
fi
echo "[main] data: $DATA_PATH  tokenizer: $TOKENIZER_PATH"

RUN_ID=${RUN_ID:-cpu_$(date +%Y%m%d_%H%M%S)}
./build/pgolf train --preset cpu --data-path "$DATA_PATH" --tokenizer-path "$TOKENIZER_PATH" \
  --run-id "$RUN_ID" "$@"
./build/pgolf eval "runs/$RUN_ID/final_model.int8.pgolf" \
  --val "$DATA_PATH/fineweb_val_*.bin" --tokenizer "$TOKENIZER_PATH"
