// The export pipeline's pieces: the model's input observer (names and inputs
// of every quantised matrix, zero-cost when unset), Hessian calibration from
// batches and from self-generated sequences, unbanked export names, the
// scheme from QUANT's options, labels and the selective-prune target.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <map>
#include <set>
#include <string>

#include "artifact/artifact.h"
#include "config/presets.h"
#include "export/calibration.h"
#include "export/export.h"
#include "model/weights.h"
#include "quant/gptq.h"
#include "quant/scheme.h"
#include "tests/quant/single_thread.h"
#include "tests/test_util.h"

namespace pgolf {
namespace {

class ExportTest : public testing::SingleThreadTest {};

// name -> (times seen in one forward, input columns)
std::map<std::string, std::pair<int, int64_t>> observe_one_forward(GPT& model,
                                                                   const torch::Tensor& ids) {
  std::map<std::string, std::pair<int, int64_t>> seen;
  model->set_input_observer([&](const std::string& name, const torch::Tensor& input) {
    auto& s = seen[name];
    s.first += 1;
    s.second = input.size(-1);
  });
  torch::NoGradGuard no_grad;
  model->hidden(ids);
  model->set_input_observer({});
  return seen;
}

class ObserverByLayout : public ExportTest, public ::testing::WithParamInterface<std::string> {};

TEST_P(ObserverByLayout, SeesEveryMatrixUnderItsExportNameWithMatchingColumns) {
  torch::manual_seed(3);
  const ModelConfig config = testing::tiny_entry_config(GetParam());
  GPT model(config);
  const auto ids = torch::randint(config.vocab_size, {2, 12}, torch::kLong);
  const auto seen = observe_one_forward(model, ids);

  // Every observed name is a 2-D tensor of the exported (unbanked) dict whose
  // column count is the observed input's width.
  std::map<std::string, torch::Tensor> exported;
  for (const auto& [name, t] : export_state_dict(model)) exported[name] = t;
  for (const auto& [name, s] : seen) {
    ASSERT_TRUE(exported.count(name)) << name;
    EXPECT_EQ(exported[name].dim(), 2) << name;
    EXPECT_EQ(exported[name].size(1), s.second) << name;
  }
  // And every attention / MLP matrix and both projections are observed.
  int64_t matrices = 0;
  for (const auto& [name, t] : exported) {
    const bool layer_matrix =
        (name.find(".attn.c_") != std::string::npos ||
         name.find(".attn.proj.") != std::string::npos || name.find(".mlp.") != std::string::npos);
    if (!layer_matrix && name != "bigram.proj.weight" && name != "ve_shared.proj.weight") continue;
    ++matrices;
    EXPECT_TRUE(seen.count(name)) << name << " was not observed";
  }
  EXPECT_EQ(static_cast<int64_t>(seen.size()), matrices);
  const std::string q0 =
      GetParam() == "cores" ? "cores.0.attn.c_q.weight" : "blocks.0.attn.c_q.weight";
  ASSERT_TRUE(seen.count(q0));
  // Recurrence (blocks/banks: layers 1,2 again) and the shared core (cores:
  // layer 4 reuses core 0) show a matrix twice in one forward.
  const std::string twice =
      GetParam() == "cores" ? "cores.0.mlp.fc.weight" : "blocks.1.mlp.fc.weight";
  EXPECT_EQ(seen.at(twice).first, 2);

  // Unset: the forward is unchanged (same output bit for bit).
  torch::NoGradGuard no_grad;
  const auto a = model->hidden(ids);
  model->set_input_observer([](const std::string&, const torch::Tensor&) {});
  const auto b = model->hidden(ids);
  model->set_input_observer({});
  EXPECT_TRUE(torch::equal(a, b));
}

INSTANTIATE_TEST_SUITE_P(Layouts, ObserverByLayout, ::testing::Values("blocks", "cores", "banks"));

TEST_F(ExportTest, BankedExportNamesRebankToTheModel) {
  torch::manual_seed(4);
  GPT model(testing::tiny_entry_config("banks"));
  const StateDict unbanked = export_state_dict(model);
  EXPECT_FALSE(has_tensor(unbanked, "qo_bank"));
  EXPECT_TRUE(has_tensor(unbanked, "blocks.4.attn.proj.weight"));
  const StateDict rebanked = rebank_state_dict(unbanked, 5);
  GPT other(testing::tiny_entry_config("banks"));
  load_state_dict(other, rebanked);
  EXPECT_TRUE(torch::equal(other->qo_bank, model->qo_bank));
  EXPECT_TRUE(torch::equal(other->mlp_down_bank, model->mlp_down_bank));
}

// A banked model wide enough that its MLP matrices take #1406's int6 path.
ModelConfig gptq_sized_config() {
  ModelConfig c = testing::tiny_entry_config("banks");
  c.num_layers = 2;
  c.model_dim = 256;
  c.num_heads = 4;
  c.num_kv_heads = 2;
  c.recur_layers = "1";
  c.xsa_last_n = 1;
  c.ve_layers = "1";
  return c;
}

TEST_F(ExportTest, Pr1855CalibrationCountsEveryLoopPassAndTheHeadInput) {
  torch::manual_seed(6);
  GPT model(testing::tiny_pr1855_config());  // blocks 1-2 run twice when looped
  model->set_looping(true);
  model->set_document_attention(true);
  std::vector<torch::Tensor> batches;
  for (int i = 0; i < 2; ++i) batches.push_back(torch::randint(64, {2, 16}, torch::kLong));
  const auto collect = [&](const CalibrationOptions& options) {
    size_t next = 0;
    return collect_hessians(
        model, [&] { return batches[next++]; }, 2, options);
  };
  const Hessians every = collect(calibration_pr1855());
  CalibrationOptions first_only = calibration_pr1855();
  first_only.every_pass = false;
  const Hessians first = collect(first_only);
  EXPECT_TRUE(model->document_attention());  // restored
  const auto h = [](const Hessians& hs, const std::string& name) {
    for (const auto& [n, t] : hs) {
      if (n == name) return t;
    }
    return torch::Tensor();
  };
  // The tied head's input, as the record collects it (the final norm's output).
  ASSERT_TRUE(h(every, "tok_emb.weight").defined());
  EXPECT_EQ(h(every, "tok_emb.weight").size(0), testing::tiny_pr1855_config().model_dim);
  // A block run once: the same either way (divided by the 2 forwards, undamped).
  EXPECT_TRUE(
      torch::equal(h(every, "blocks.0.attn.c_q.weight"), h(first, "blocks.0.attn.c_q.weight")));
  // A looped block adds both runs, still divided by the forwards, not the runs.
  const double ratio = h(every, "blocks.1.mlp.fc.weight").trace().item<double>() /
                       h(first, "blocks.1.mlp.fc.weight").trace().item<double>();
  EXPECT_GT(ratio, 1.5);
  EXPECT_LT(ratio, 2.5);
}

TEST_F(ExportTest, HessiansFromBatchesDriveFullGptq) {
  torch::manual_seed(5);
  const ModelConfig config = gptq_sized_config();
  GPT model(config);
  {
    torch::NoGradGuard no_grad;  // non-zero output projections, as after training
    model->qo_bank.normal_(0, 0.05);
    model->mlp_down_bank.normal_(0, 0.05);
  }
  int calls = 0;
  const Hessians hessians = collect_hessians(
      model,
      [&] {
        ++calls;
        return torch::randint(config.vocab_size, {2, 16}, torch::kLong);
      },
      3, calibration_pr1406());
  EXPECT_EQ(calls, 3);
  // 6 matrices x 2 layers + bigram.proj + ve_shared.proj.
  EXPECT_EQ(hessians.size(), 14u);
  EXPECT_TRUE(model->is_training());  // mode restored
  const StateDict weights = export_state_dict(model);
  const torch::Tensor* h =
      find_hessian(hessians, "blocks.1.mlp.proj.weight", config.mlp_hidden(), HessianMatch::kExact);
  ASSERT_NE(h, nullptr);
  EXPECT_EQ(h->size(0), config.mlp_hidden());

  // With the Hessians, #1406's int6 of the MLP matrices is GPTQ's: it beats
  // the Hessian-free clip search in the Hessian-weighted error.
  const QuantScheme scheme = quant_scheme("pr1406");
  const QuantizedModel with = quantize_model(weights, scheme, &hessians);
  const QuantizedModel without = quantize_model(weights, scheme);
  for (size_t i = 0; i < with.entries.size(); ++i) {
    const auto& name = with.entries[i].name;
    if (name != "blocks.1.mlp.proj.weight") continue;
    EXPECT_EQ(with.entries[i].bits, 6);
    const torch::Tensor w = weights[i].second;
    const double e_gptq = hessian_weighted_error(w, {with.entries[i].q, with.entries[i].scale}, *h);
    const double e_plain =
        hessian_weighted_error(w, {without.entries[i].q, without.entries[i].scale}, *h);
    EXPECT_LT(e_gptq, e_plain);
  }
}

TEST_F(ExportTest, SelfGeneratedSequencesAreSeededAndInRange) {
  torch::manual_seed(6);
  const ModelConfig config = testing::tiny_entry_config("blocks");
  GPT model(config);
  const auto a = generate_calibration_sequences(model, 3, 10, 0.8, 2, 42);
  const auto b = generate_calibration_sequences(model, 3, 10, 0.8, 2, 42);
  ASSERT_EQ(a.sizes(), (std::vector<int64_t>{3, 10}));
  EXPECT_TRUE(torch::equal(a, b));
  EXPECT_GE(a.min().item<int64_t>(), 0);
  EXPECT_LT(a.max().item<int64_t>(), config.vocab_size);
}

TEST(ExportConfig, SchemeLabelsAndTargetFollowTheOptions) {
  QuantConfig q;
  q.format = SchemeId::kPr461;
  q.gptq_lite = true;
  q.all_int5 = true;
  q.code_storage = CodeStorage::kBitPacked;
  const QuantScheme s = scheme_for(q);
  EXPECT_EQ(s.id, SchemeId::kPr461);
  EXPECT_TRUE(s.gptq_lite);
  EXPECT_TRUE(s.all_int5);
  EXPECT_EQ(s.storage, CodeStorage::kBitPacked);
  EXPECT_EQ(artifact_file_name(q), "final_model.int6.pgolf");
  EXPECT_EQ(artifact_file_name(QuantConfig{}), "final_model.int8.pgolf");
  EXPECT_DOUBLE_EQ(q.resolved_prune_frac(), 0.03);
  EXPECT_DOUBLE_EQ(QuantConfig{}.resolved_prune_frac(), 0.0);
  EXPECT_EQ(selective_prune_target(q, 150'000), 15'850'000);
  q.target_bytes = 1234;
  EXPECT_EQ(selective_prune_target(q, 150'000), 1234);
  EXPECT_EQ(roundtrip_label(kInt8Format, Codec::kZlib), "final_int8_zlib_roundtrip");
  EXPECT_EQ(roundtrip_label(scheme_quant_format(SchemeId::kPr1406), Codec::kLzma),
            "final_int6_roundtrip");
}

}  // namespace
}  // namespace pgolf
