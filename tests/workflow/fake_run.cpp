#include "tests/workflow/fake_run.h"

#include <fmt/format.h>
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include "artifact/artifact.h"
#include "common/code_size.h"
#include "common/fs.h"
#include "config/presets.h"
#include "model/gpt.h"
#include "model/weights.h"
#include "tests/test_util.h"

namespace pgolf::testing {

namespace {

// results.json's "evaluation", as eval/final_eval.h writes it.
nlohmann::json fake_evaluation(const std::string& kind, double loss, double bpb_per_nat) {
  auto scored = [&](double l, double seconds) {
    return nlohmann::json{{"val_loss", l}, {"val_bpb", l * bpb_per_nat}, {"eval_seconds", seconds}};
  };
  nlohmann::json e = {{"score_first", kind != "postquant"}};
  if (kind == "roundtrip") return e;
  e["sliding"] = scored(loss - 0.02, 4.0);
  if (kind == "ttt") e["ttt"] = scored(loss - 0.03, 30.0);
  if (kind == "postquant") {
    e["val_adapt"] = {{"mode", "postquant"}, {"seconds", 60.0}};
    e["non_compliant"] = {"VAL_ADAPT=postquant trains on the validation tokens"};
  }
  return e;
}

}  // namespace

std::filesystem::path write_fake_run(const std::filesystem::path& parent, const FakeRun& f) {
  const auto dir = parent / f.name;
  std::filesystem::create_directories(dir);
  Config c = preset("cpu");
  c.model = two_layer_model(c.model);
  c.train.seed = f.seed;
  c.train.iterations = 100;
  c.train.train_batch_tokens = 4096;
  c.runtime.device = DeviceSpec::parse(f.device, "device");
  c.eval.val_max_tokens = f.val_max_tokens;
  c.data.tokenizer_path = (parent / "no_tokenizer.model").string();
  write_file_atomic(dir / "config.json", to_json(c).dump(2));

  std::string metrics, log;
  const double bpb_per_nat = 0.6;
  for (int step = 0; step <= 100; step += 10) {
    const double progress = step / 100.0;
    const double val_loss = 6.9 - (6.9 - f.final_val_loss) * std::sqrt(progress);
    if (step > 0) {
      const double lr_scale = step <= 70 ? 1.0 : (100 - step) / 30.0;
      const double momentum = 0.85 + 0.1 * std::min(1.0, step / 100.0);
      metrics += nlohmann::json{{"event", "train"},
                                {"step", step},
                                {"train_loss", val_loss + 0.05},
                                {"train_time_ms", step * 50.0},
                                {"lr_scale", lr_scale},
                                {"muon_momentum", momentum},
                                {"tokens", step * 4096}}
                     .dump() +
                 "\n";
      log += fmt::format("step:{}/100 train_loss:{:.4f}\n", step, val_loss + 0.05);
    }
    if (step % 50 == 0) {
      metrics += nlohmann::json{{"event", "val"},
                                {"step", step},
                                {"val_loss", val_loss},
                                {"val_bpb", val_loss * bpb_per_nat},
                                {"train_time_ms", step * 50.0},
                                {"eval_time_ms", 800.0}}
                     .dump() +
                 "\n";
    }
  }
  write_file_atomic(dir / "metrics.jsonl", metrics + "{\"event\": \"train\", \"st");  // torn line
  if (!f.finished) {
    write_file_atomic(dir / "train.log", log);
    return dir;
  }

  torch::manual_seed(static_cast<uint64_t>(f.seed));
  GPT model(c.model);
  const auto artifact = dir / "final_model.int8.pgolf";
  const int64_t bytes =
      write_artifact(artifact, quantize_int8(state_dict(model)), to_json(c), Codec::kZlib, 9);
  const double loss = f.final_val_loss;
  log += fmt::format("final_int8_zlib_roundtrip_exact val_loss:{:.8f} val_bpb:{:.8f}\n", loss,
                     loss * bpb_per_nat);
  write_file_atomic(dir / "train.log", log);
  const int64_t code = code_size().bytes;
  const nlohmann::json results = {
      {"preset", c.preset},
      {"steps", 100},
      {"train_time_ms", 5000.0},
      {"final_train_loss", loss + 0.05},
      {"pre_export", {{"val_loss", loss - 0.01}, {"val_bpb", (loss - 0.01) * bpb_per_nat}}},
      {"roundtrip",
       {{"val_loss", loss}, {"val_bpb", loss * bpb_per_nat}, {"eval_time_ms", 1200.0}}},
      {"artifact", artifact.filename().string()},
      {"artifact_bytes", bytes},
      {"code_bytes", code},
      {"total_bytes", bytes + code},
      {"fits_cap", bytes + code <= 16'000'000},
      {"export", {{"scheme", "int8"}}},
      {"evaluation", fake_evaluation(f.evaluation, loss, bpb_per_nat)}};
  write_file_atomic(dir / "results.json", results.dump(2));
  return dir;
}

}  // namespace pgolf::testing
