#include "eval/final_eval.h"

#include <fmt/format.h>

#include "common/progress.h"
#include "dist/process_group.h"

namespace pgolf {
namespace {

nlohmann::json val_json(const ValResult& r) {
  return {{"val_loss", r.val_loss},
          {"val_bpb", r.val_bpb},
          {"token_count", r.token_count},
          {"byte_count", r.byte_count},
          {"eval_seconds", r.seconds}};
}

// Restores the RoPE reference length when the evaluation is over.
class NtkScope {
 public:
  NtkScope(GPT& model, int64_t window_len, int64_t train_seq_len, bool enabled) : model_(model) {
    if (enabled && window_len > train_seq_len && model->config().effective_ntk_ref_len() == 0) {
      previous_ = model->set_rope_ntk_ref_len(train_seq_len);
      active_ = true;
    }
  }
  ~NtkScope() {
    if (active_) model_->set_rope_ntk_ref_len(previous_);
  }
  bool active() const { return active_; }

 private:
  GPT& model_;
  int64_t previous_ = 0;
  bool active_ = false;
};

}  // namespace

std::string final_eval_prefix(const std::string& roundtrip_name) {
  constexpr std::string_view kSuffix = "_roundtrip";
  if (roundtrip_name.size() > kSuffix.size() &&
      roundtrip_name.compare(roundtrip_name.size() - kSuffix.size(), kSuffix.size(), kSuffix) ==
          0) {
    return roundtrip_name.substr(0, roundtrip_name.size() - kSuffix.size());
  }
  return roundtrip_name;
}

nlohmann::json FinalEvalResult::to_json() const {
  nlohmann::json j = nlohmann::json::object();
  if (adapt) j["val_adapt"] = adapt->to_json();
  if (sliding) {
    j["sliding"] = val_json(sliding->result);
    j["sliding"]["windows"] = sliding->windows;
    if (sliding->reference.token_count > 0) {
      j["sliding"]["every_target_once"] = val_json(sliding->exact);
    }
  }
  if (ttt) j["ttt"] = ttt->to_json();
  if (phased) j["ttt_phased"] = phased->to_json();
  j["score_first"] =
      !adapt && (!ttt || ttt->legality.score_first) && (!phased || phased->legality.score_first);
  if (!non_compliant.empty()) j["non_compliant"] = non_compliant;
  return j;
}

FinalEvalResult run_final_evaluation(GPT& model, const torch::Tensor& stream, const ByteLuts& luts,
                                     const Config& config, const FinalEvalOptions& options) {
  const bool master = !options.group || options.group->master();
  auto print = [&](const std::string& line) {
    if (master && options.print) options.print(line);
  };
  FinalEvalResult out;
  const EvalConfig& ec = config.eval;
  const int64_t train_len = config.train.train_seq_len;
  const int64_t window_len = ec.resolved_seq_len(train_len);
  std::string suffix;

  if (config.ttt.val_adapt == ValAdapt::kPostquant) {
    out.adapt = adapt_on_validation(model, stream, config.ttt, train_len, options.group, print);
  }
  if (config.ttt.val_adapt != ValAdapt::kNone) {
    out.non_compliant.push_back(non_compliant_reason(config.ttt.val_adapt));
    suffix = " NON_COMPLIANT";
  }

  NtkScope ntk(model, window_len, train_len, ec.eval_ntk);
  if (window_len != train_len) {
    print(fmt::format("eval_seq_len:{} (train {}) rope:{}", window_len, train_len,
                      ntk.active() ? fmt::format("ntk ref {}", train_len) : "as trained"));
  }

  if (ec.eval_stride > 0) {
    SlidingOptions so;
    so.window_len = window_len;
    so.stride = std::min(ec.eval_stride, window_len);
    so.batch_seqs = ec.eval_batch_seqs;
    so.reference_tail = ec.eval_reference_tail;
    so.group = options.group;
    Progress progress("sliding", 0, "windows", options.quiet || !master);
    so.on_batch = [&](int64_t done, int64_t total) {
      progress.set_total(total);
      progress.update(done);
    };
    out.sliding = evaluate_sliding(model, stream, luts, so);
    progress.finish();
    const ValResult& r = out.sliding->result;
    const std::string name = options.prefix + "_sliding_window";
    print(fmt::format("{} val_loss:{:.4f} val_bpb:{:.4f} stride:{} eval_time:{:.0f}ms{}", name,
                      r.val_loss, r.val_bpb, so.stride, 1000.0 * r.seconds, suffix));
    print(fmt::format("{}_exact val_loss:{:.8f} val_bpb:{:.8f}{}", name, r.val_loss, r.val_bpb,
                      suffix));
    if (ec.eval_reference_tail) {
      const ValResult& once = out.sliding->exact;
      print(fmt::format(
          "sliding_window_tail: EVAL_REFERENCE_TAIL=1 counts {} targets ({} more than the {} "
          "scored once); every target once: val_bpb:{:.8f}, difference {:+.8f}",
          r.token_count, r.token_count - once.token_count, once.token_count, once.val_bpb,
          r.val_bpb - once.val_bpb));
    }
  }

  if (config.ttt.mode == TttMode::kPhased) {
    PhasedTttOptions po;
    po.ttt = config.ttt.phased;
    po.global_seq_len = window_len;
    po.max_seconds = config.ttt.max_seconds;
    po.group = options.group;
    po.print = print;
    Progress progress("ttt_phased", 0, "batches", options.quiet || !master);
    po.on_batch = [&](int64_t done, int64_t total, double bpb) {
      progress.set_total(total);
      progress.update(done, fmt::format("bpb {:.4f}", bpb));
    };
    out.phased = phased_lora_ttt(model, stream, luts, po);
    progress.finish();
    const auto& t = *out.phased;
    print(
        fmt::format("ttt_legality: score_first:{} documents:{} updates:{} violations:{} "
                    "given_bos:{}",
                    t.legality.score_first ? 1 : 0, t.documents, t.legality.updates,
                    t.legality.violations, t.legality.given));
    print(fmt::format("legal_ttt_phased val_loss:{:.4f} val_bpb:{:.4f} eval_time:{:.0f}ms{}{}",
                      t.result.val_loss, t.result.val_bpb, 1000.0 * t.result.seconds,
                      t.capped ? " time_capped" : "", suffix));
    print(fmt::format("legal_ttt_phased_exact val_loss:{:.8f} val_bpb:{:.8f}{}", t.result.val_loss,
                      t.result.val_bpb, suffix));
  } else if (config.ttt.enabled()) {
    TttOptions to;
    to.ttt = config.ttt;
    to.train_seq_len = train_len;
    to.window_len = window_len;
    to.stride = std::min(ec.eval_stride > 0 ? ec.eval_stride : window_len, window_len);
    to.eval_batch_seqs = ec.eval_batch_seqs;
    to.reference_tail = ec.eval_reference_tail;
    to.ns_dtype = config.train.muon_ns_bf16 ? torch::kBFloat16 : torch::kFloat;
    to.group = options.group;
    Progress progress("ttt", 0, "chunks", options.quiet || !master);
    to.print = print;  // RunLog's lines erase the live progress line first
    to.on_chunk = [&](int64_t done, int64_t total, double bpb) {
      progress.set_total(total);
      progress.update(done, fmt::format("bpb {:.4f}", bpb));
    };
    out.ttt = score_first_ttt(model, stream, luts, to);
    progress.finish();
    const auto& t = *out.ttt;
    const auto& legality = t.legality;
    print(fmt::format("ttt_legality: score_first:{} chunks:{} trained:{} updates:{} violations:{}",
                      legality.score_first ? 1 : 0, t.chunks, t.trained_chunks, legality.updates,
                      legality.violations));
    print(fmt::format("legal_ttt val_loss:{:.4f} val_bpb:{:.4f} eval_time:{:.0f}ms{}",
                      t.result.val_loss, t.result.val_bpb, 1000.0 * t.result.seconds, suffix));
    print(fmt::format("legal_ttt_exact val_loss:{:.8f} val_bpb:{:.8f}{}", t.result.val_loss,
                      t.result.val_bpb, suffix));
  }
  if (!out.non_compliant.empty()) {
    for (const auto& reason : out.non_compliant) {
      print(fmt::format("WARNING: NON-COMPLIANT evaluation: {}", reason));
    }
  }
  return out;
}

}  // namespace pgolf
