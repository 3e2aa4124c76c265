// pgolf generate ARTIFACT --prompt TEXT: sample a continuation from the model
// an artifact holds (workflow/sampler.h), streamed as it is drawn.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <memory>

#include "cli/workflow/commands.h"
#include "common/error.h"
#include "pipeline/run_context.h"
#include "workflow/sampler.h"

namespace pgolf {
namespace {

struct GenerateArgs {
  std::string artifact;
  std::string prompt;
  std::string tokenizer = "./data/tokenizers/fineweb_1024_bpe.model";
  SampleOptions sample;
  std::string device = "cpu";
  int threads = 0;
};

// Prints what decoding the tokens so far adds to the text already printed
// (a byte-fallback character is only complete after its last byte token).
class TextStream {
 public:
  explicit TextStream(const Tokenizer& tokenizer) : tokenizer_(tokenizer) {}
  void add(int token) {
    ids_.push_back(token);
    const std::string text = tokenizer_.decode(ids_);
    if (text.size() > printed_ && text.compare(0, printed_, text_, 0, printed_) == 0 &&
        text.find("\xEF\xBF\xBD", printed_) == std::string::npos) {
      fmt::print("{}", text.substr(printed_));
      std::fflush(stdout);
      printed_ = text.size();
    }
    text_ = text;
  }
  void finish() {
    if (text_.size() > printed_) fmt::print("{}", text_.substr(printed_));
    fmt::print("\n");
    std::fflush(stdout);  // before the summary on stderr
  }

 private:
  const Tokenizer& tokenizer_;
  std::vector<int> ids_;
  std::string text_;
  size_t printed_ = 0;
};

}  // namespace

Command add_generate_command(CLI::App& app) {
  auto a = std::make_shared<GenerateArgs>();
  CLI::App* sub = app.add_subcommand("generate", "sample text from an artifact's model");
  sub->add_option("artifact", a->artifact, "a pgolf artifact (.pgolf)")->required();
  sub->add_option("--prompt", a->prompt, "text to continue (empty: start a new document)");
  sub->add_option("--tokenizer-path,--tokenizer", a->tokenizer, "the SentencePiece .model")
      ->capture_default_str();
  sub->add_option("--temperature", a->sample.temperature, "0: greedy")->capture_default_str();
  sub->add_option("--top-k", a->sample.top_k, "sample among the k likeliest tokens (0: all)")
      ->capture_default_str();
  sub->add_option("--max-tokens", a->sample.max_tokens, "tokens to generate")
      ->capture_default_str();
  sub->add_option("--seed", a->sample.seed, "sampling seed")->capture_default_str();
  sub->add_option("--device", a->device, "cpu / cuda / cuda:N")->capture_default_str();
  sub->add_option("--threads", a->threads, "CPU threads (0: all cores)")->capture_default_str();
  return {sub, [a] {
            StoredModel stored = read_artifact_model(a->artifact);
            Config config = config_from_json(stored.config);
            config.runtime.device = DeviceSpec::parse(a->device, "--device");
            config.runtime.threads = a->threads;
            config.data.tokenizer_path = a->tokenizer;
            RunContext ctx = RunContext::open(config);
            ctx.load_tokenizer();
            ctx.load_model(std::move(stored.weights));
            ctx.model->eval();
            GPT& model = ctx.model;
            const Tokenizer& tokenizer = *ctx.tokenizer;
            // Documents begin with BOS in the training shards, so does the context.
            std::vector<int> context = {tokenizer.bos_id()};
            for (int id : tokenizer.encode(a->prompt)) context.push_back(id);
            a->sample.stop_token = tokenizer.bos_id();  // a new document: this one ended
            // The prompt is printed as decoded, then extended token by token:
            // decoding prompt and continuation together keeps the joining spaces right.
            TextStream stream(tokenizer);
            for (size_t i = 1; i < context.size(); ++i) stream.add(context[i]);
            const std::vector<int> drawn =
                sample_tokens(model, context, config.train.train_seq_len, a->sample,
                              [&](int token) { stream.add(token); });
            stream.finish();
            fmt::print(stderr, "[{} tokens, temperature {}, top-k {}, seed {}]\n", drawn.size(),
                       a->sample.temperature, a->sample.top_k, a->sample.seed);
            return 0;
          }};
}

}  // namespace pgolf
