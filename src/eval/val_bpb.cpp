#include "eval/val_bpb.h"

#include <chrono>
#include <cmath>

#include "common/error.h"
#include "data/shard.h"
#include "dist/process_group.h"

namespace pgolf {

torch::Tensor validation_stream(const Config& config) {
  auto tokens = load_validation_tokens(config.data.val_glob(), config.train.train_seq_len,
                                       config.model.vocab_size);
  const int64_t limit = config.eval.val_max_tokens;
  if (limit > 0 && limit + 1 < tokens.numel()) {
    const int64_t L = config.train.train_seq_len;
    const int64_t usable = (limit / L) * L;
    PGOLF_CHECK(usable > 0, "VAL_MAX_TOKENS={} is shorter than one sequence of {}", limit, L);
    tokens = tokens.slice(0, 0, usable + 1);
  }
  return tokens;
}

ByteLuts validation_byte_luts(const Config& config, const Tokenizer& tokenizer,
                              const torch::Tensor& stream) {
  ByteLuts luts = build_byte_luts(tokenizer, config.model.vocab_size);
  luts.sidecar = load_validation_byte_sidecar(config.data.val_glob(), stream.numel());
  return luts;
}

void check_sidecar_fits(const ByteLuts& luts, const torch::Tensor& stream) {
  PGOLF_CHECK(!luts.sidecar.defined() || luts.sidecar.numel() == stream.numel(),
              "the byte sidecar holds {} entries but the validation stream {} tokens: it was "
              "loaded for another stream",
              luts.sidecar.numel(), stream.numel());
}

int64_t val_batch_seqs(int64_t val_batch_size, int64_t world_size, int64_t grad_accum,
                       int64_t seq_len) {
  const int64_t local_tokens = val_batch_size / (world_size * grad_accum);
  PGOLF_CHECK(local_tokens >= seq_len,
              "VAL_BATCH_SIZE must provide at least one sequence per rank; got "
              "VAL_BATCH_SIZE={}, WORLD_SIZE={}, GRAD_ACCUM_STEPS={}, TRAIN_SEQ_LEN={}",
              val_batch_size, world_size, grad_accum, seq_len);
  return local_tokens / seq_len;
}

ValResult evaluate_val(GPT& model, const torch::Tensor& tokens, const ByteLuts& luts,
                       const ValOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  const int64_t L = options.seq_len;
  PGOLF_CHECK(tokens.dim() == 1 && tokens.numel() > L,
              "validation stream has {} tokens, fewer than one sequence of {}", tokens.numel(), L);
  const int64_t total_seqs = (tokens.numel() - 1) / L;
  const int64_t seq_begin = total_seqs * options.rank / options.world_size;
  const int64_t seq_end = total_seqs * (options.rank + 1) / options.world_size;
  check_sidecar_fits(luts, tokens);
  const auto device = model->parameters().front().device();
  const auto device_luts = luts.to(device);

  ValResult result;
  const bool was_training = model->is_training();
  model->eval();
  // A model that attends within documents (#1855) scores each batch as one
  // packed row, its attention cut at the row's BOS positions and every
  // MAX_DOC_LEN tokens, as the record's eval_val does.
  const std::vector<int64_t> rows =
      model->document_attention() ? std::vector<int64_t>{1, -1} : std::vector<int64_t>{-1, L};
  {
    torch::InferenceMode inference;
    for (int64_t s = seq_begin; s < seq_end; s += options.batch_seqs) {
      const int64_t s_end = std::min(s + options.batch_seqs, seq_end);
      auto local = tokens.slice(0, s * L, s_end * L + 1).to(device, torch::kLong);
      auto x = local.slice(0, 0, -1).view(rows);
      auto y = local.slice(0, 1).view(rows);
      auto losses = model->token_losses(x, y);  // (b, L) or (1, b*L) fp32
      // The reference multiplies the batch's fp32 mean by the count in float64.
      const int64_t count = y.numel();
      result.loss_sum += losses.mean().item<double>() * static_cast<double>(count);
      result.token_count += count;
      result.byte_count +=
          device_luts.sidecar.defined()
              ? device_luts.sidecar.slice(0, s * L + 1, s_end * L + 1).sum().item<double>()
              : target_bytes(device_luts, x, y).sum().item<double>();
      if (options.token_losses) {
        auto flat = losses.reshape({-1}).to(torch::kCPU).contiguous();
        const float* p = flat.data_ptr<float>();
        options.token_losses->insert(options.token_losses->end(), p, p + flat.numel());
      }
      if (options.on_batch) options.on_batch(s_end - seq_begin, seq_end - seq_begin);
    }
  }
  if (was_training) model->train();
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  finish(result);
  return result;
}

void all_reduce_sums(ValResult& r, ProcessGroup* group) {
  if (group && group->active()) {
    auto sums = torch::tensor({r.loss_sum, static_cast<double>(r.token_count), r.byte_count},
                              torch::kDouble);
    group->all_reduce_sum(sums);
    r.loss_sum = sums[0].item<double>();
    r.token_count = static_cast<int64_t>(sums[1].item<double>());
    r.byte_count = sums[2].item<double>();
  }
  finish(r);
}

void finish(ValResult& r) {
  if (r.token_count == 0 || r.byte_count <= 0) return;
  r.val_loss = r.loss_sum / static_cast<double>(r.token_count);
  const double bits_per_token = r.val_loss / std::log(2.0);
  r.val_bpb = bits_per_token * (static_cast<double>(r.token_count) / r.byte_count);
}

}  // namespace pgolf
