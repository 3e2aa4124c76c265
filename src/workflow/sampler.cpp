#include "workflow/sampler.h"

#include "artifact/artifact.h"
#include "common/error.h"
#include "io/state_dict.h"
#include "model/weights.h"

namespace pgolf {

std::vector<int> sample_tokens(GPT& model, std::vector<int> context, int64_t window,
                               const SampleOptions& o, const std::function<void(int)>& on_token) {
  PGOLF_CHECK(!context.empty(), "generate: the context needs at least one token");
  PGOLF_CHECK(o.temperature >= 0, "--temperature must be >= 0, got {}", o.temperature);
  PGOLF_CHECK(o.top_k >= 0, "--top-k must be >= 0, got {}", o.top_k);
  PGOLF_CHECK(o.max_tokens >= 0, "--max-tokens must be >= 0, got {}", o.max_tokens);
  PGOLF_CHECK(window > 0, "generate: the context window must be positive");
  torch::NoGradGuard no_grad;
  model->eval();
  const auto device = model->parameters().front().device();
  auto generator = at::detail::createCPUGenerator(o.seed);
  std::vector<int> drawn;
  for (int64_t i = 0; i < o.max_tokens; ++i) {
    const size_t start = context.size() > static_cast<size_t>(window)
                             ? context.size() - static_cast<size_t>(window)
                             : 0;
    std::vector<int64_t> ids(context.begin() + static_cast<std::ptrdiff_t>(start), context.end());
    const auto input = torch::tensor(ids, torch::kLong).unsqueeze(0).to(device);
    // No KV cache: each step re-runs the window, fine for a few hundred tokens.
    auto logits = model->logits(input).select(1, -1).squeeze(0).to(torch::kCPU, torch::kFloat);
    int next = 0;
    if (o.temperature == 0) {
      next = static_cast<int>(logits.argmax().item<int64_t>());
    } else {
      logits = logits / o.temperature;
      if (o.top_k > 0 && o.top_k < logits.size(0)) {
        // Everything below the k-th largest logit gets probability zero.
        const auto kth = std::get<0>(logits.topk(o.top_k)).index({o.top_k - 1});
        logits = logits.masked_fill(logits < kth, -std::numeric_limits<float>::infinity());
      }
      const auto probs = torch::softmax(logits, -1);
      next = static_cast<int>(torch::multinomial(probs, 1, false, generator).item<int64_t>());
    }
    if (next == o.stop_token) break;
    context.push_back(next);
    drawn.push_back(next);
    if (on_token) on_token(next);
  }
  return drawn;
}

}  // namespace pgolf
