#include "model/embeddings.h"

#include "common/error.h"
#include "model/documents.h"

namespace pgolf {
namespace {

// The multiplications wrap in int32 like the reference's; the mod is Python's
// (the sign of the divisor), i.e. torch.remainder.
torch::Tensor hash_mod(const torch::Tensor& mixed, int64_t num_buckets) {
  return torch::remainder(mixed, num_buckets - 1);
}

}  // namespace

torch::Tensor bigram_hash(const torch::Tensor& ids, int64_t num_buckets) {
  PGOLF_CHECK(num_buckets >= 2, "bigram hash needs at least 2 buckets, got {}", num_buckets);
  const auto t = ids.to(torch::kInt);
  const int64_t T = t.size(-1);
  auto out = torch::full_like(t, num_buckets - 1);
  if (T > 1) {
    auto cur = t.narrow(-1, 1, T - 1), prev = t.narrow(-1, 0, T - 1);
    out.narrow(-1, 1, T - 1)
        .copy_(hash_mod(torch::bitwise_xor(cur * 36313, prev * 27191), num_buckets));
  }
  return out.to(torch::kLong);
}

torch::Tensor trigram_hash(const torch::Tensor& ids, int64_t num_buckets) {
  PGOLF_CHECK(num_buckets >= 2, "trigram hash needs at least 2 buckets, got {}", num_buckets);
  const auto t = ids.to(torch::kInt);
  const int64_t T = t.size(-1);
  auto out = torch::full_like(t, num_buckets - 1);
  if (T > 2) {
    auto cur = t.narrow(-1, 2, T - 2), prev = t.narrow(-1, 1, T - 2),
         prev2 = t.narrow(-1, 0, T - 2);
    auto mixed = torch::bitwise_xor(torch::bitwise_xor(cur * 36313, prev * 27191), prev2 * 51497);
    out.narrow(-1, 2, T - 2).copy_(hash_mod(mixed, num_buckets));
  }
  return out.to(torch::kLong);
}

BigramHashImpl::BigramHashImpl(int64_t num_buckets, int64_t dim, int64_t model_dim, bool trigram)
    : num_buckets_(num_buckets), trigram_(trigram) {
  // Construction order = the reference's (its RNG draws): table, projection.
  embed = register_module("embed", torch::nn::Embedding(num_buckets, dim));
  if (dim != model_dim) proj = register_module("proj", CastedLinear(dim, model_dim));
  scale = register_parameter("scale", torch::tensor(0.05, torch::kFloat));
  torch::NoGradGuard no_grad;
  embed->weight.zero_();
  if (proj) proj->weight.zero_();
}

torch::Tensor BigramHashImpl::forward(const torch::Tensor& ids, torch::ScalarType dtype) {
  auto h = embed(bigram_hash(ids, num_buckets_)).to(dtype);
  if (trigram_) h = h + embed(trigram_hash(ids, num_buckets_)).to(dtype);
  if (proj) h = proj(h);
  return h * scale.to(dtype);
}

SmearGateImpl::SmearGateImpl(int64_t dim) {
  gate = register_parameter("gate", torch::zeros({dim}, torch::kFloat));
}

torch::Tensor SmearGateImpl::forward(const torch::Tensor& x) {
  auto g = torch::sigmoid(gate.to(x.scalar_type()));
  auto prev = torch::cat({torch::zeros_like(x.narrow(1, 0, 1)), x.narrow(1, 0, x.size(1) - 1)}, 1);
  return (1 - g) * x + g * prev;
}

torch::Tensor bos_masked_smear(const torch::Tensor& e, const torch::Tensor& ids,
                               const torch::Tensor& gate_weight, const torch::Tensor& lambda) {
  const int64_t T = e.size(1);
  if (T < 2) return e;
  const auto dtype = e.scalar_type();
  const auto cur = e.narrow(1, 1, T - 1);
  const auto window = cur.narrow(-1, 0, gate_weight.size(1));
  const auto g = lambda.to(dtype) * torch::sigmoid(casted_linear(window, gate_weight));
  const auto not_bos = ids.narrow(1, 1, T - 1).ne(kBosId).to(dtype).unsqueeze(-1);
  return torch::cat({e.narrow(1, 0, 1), cur + g * e.narrow(1, 0, T - 1) * not_bos}, 1);
}

ValueEmbeddingImpl::ValueEmbeddingImpl(int64_t vocab_size, int64_t dim, int64_t out_dim) {
  embed = register_module("embed", torch::nn::Embedding(vocab_size, dim));
  {
    torch::NoGradGuard no_grad;
    embed->weight.normal_(0.0, 0.01);
  }
  if (dim != out_dim) proj = register_module("proj", CastedLinear(dim, out_dim));
  scale = register_parameter("scale", torch::tensor(0.1, torch::kFloat));
  torch::NoGradGuard no_grad;
  if (proj) proj->weight.zero_();
}

torch::Tensor ValueEmbeddingImpl::forward(const torch::Tensor& ids, torch::ScalarType dtype) {
  auto h = embed(ids).to(dtype);
  if (proj) h = proj(h);
  return h * scale.to(dtype);
}

}  // namespace pgolf
