// What an artifact holds, tensor by tensor (`pgolf inspect ARTIFACT`): format,
// the route the exporter took (GPTQ bits, gate int8, pass-through, LQER rank
// and bytes), the per-group codec's group and stream sizes, code width, stored
// bytes, zeroed (pruned) fraction, the codes' empirical
// entropy, and, given the original weights, the quantization error; then
// totals, compression ratio, bits per parameter and the size breakdown
// against the 16,000,000-byte cap.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "artifact/artifact.h"
#include "io/state_dict.h"

namespace pgolf {

struct TensorReport {
  std::string name;
  std::string format;  // int8 | int6 | int5 | fp16 | fp32 | passthrough (quant/scheme.h)
  std::string kind;    // the artifact's kind (int8_per_row, intn_per_row, ...)
  // How the exporter got there: "gptq int6", "gate int8 per row", "fp16
  // pass-through", ... (pr1855's routes; the kind for other formats).
  std::string route;
  int64_t lqer_rank = 0;   // LQER factors' rank, 0: none
  int64_t lqer_bytes = 0;  // their codes and scales, uncompressed
  int group = -1;          // the per-group codec's group (artifact/pergroup.h), -1: remainder
  int bits = 0;            // code width of integer kinds, else the kept dtype's width
  std::vector<int64_t> shape;
  int64_t numel = 0;
  int64_t stored_bytes = 0;  // uncompressed payload bytes: codes (packed or not) + scales
  double zero_frac = 0;      // codes (or kept values) that are exactly zero
  double entropy_bits = 0;   // integer kinds: zero-order entropy of the codes, bits per code
  // With the original weights: max |W - Ŵ| and ||W - Ŵ|| / ||W||.
  std::optional<double> max_abs_error;
  std::optional<double> rel_rms_error;
};

struct ArtifactReport {
  ArtifactInfo info;
  std::string storage;  // int8 containers | packed
  std::vector<TensorReport> tensors;
  int64_t params = 0;
  int64_t original_bytes = 0;        // numel x the restored dtype's size, summed
  int64_t stored_bytes = 0;          // uncompressed payload (= info.uncompressed_bytes)
  SizeReport size;                   // the whole file + this build's code bytes
  std::string non_compliant;         // the header's mark (weights trained on val tokens)
  double compression_ratio() const;  // original bytes / file bytes
  double bits_per_param() const;     // file bytes x 8 / params
};

// `original` (optional): the weights before quantization under the artifact's
// names; a banked dict (qo_bank, ...) is unbanked to match a per-layer artifact.
ArtifactReport inspect_artifact(const LoadedArtifact& artifact,
                                const StateDict* original = nullptr);

// The report as a table and summary lines.
std::string format_report(const ArtifactReport& report);

}  // namespace pgolf
