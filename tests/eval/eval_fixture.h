// The trained tiny model (tests/test_util.h) with its validation stream and
// byte tables, for the evaluation tests.
#pragma once

#include <torch/types.h>

#include "config/config.h"
#include "data/shard.h"
#include "data/tokenizer.h"
#include "eval/val_bpb.h"
#include "io/safetensors.h"
#include "model/weights.h"
#include "tests/test_util.h"

namespace pgolf::testing {

struct TrainedFixture {
  Config config;
  GPT model{nullptr};
  torch::Tensor stream;  // the first VAL_MAX_TOKENS + 1 validation tokens
  ByteLuts luts;
};

inline TrainedFixture trained_fixture() {
  TrainedFixture f;
  f.config = trained_tiny_config();
  torch::manual_seed(0);
  f.model = GPT(f.config.model);
  load_state_dict(f.model, read_safetensors(trained_tiny_run() / "final_model.safetensors"));
  f.model->eval();
  f.stream = validation_stream(f.config);
  f.luts = build_byte_luts(Tokenizer::load(f.config.data.tokenizer_path), 1024);
  return f;
}

// The model's plain val_bpb over sequences of `seq_len`.
inline ValResult plain_eval(TrainedFixture& f, int64_t seq_len) {
  ValOptions options;
  options.seq_len = seq_len;
  options.batch_seqs = 32;
  return evaluate_val(f.model, f.stream, f.luts, options);
}

}  // namespace pgolf::testing
