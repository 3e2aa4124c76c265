#include "quant/formats.h"

#include "common/error.h"
#include "quant/int8.h"  // kInt8Format

namespace pgolf {

std::string_view scheme_quant_format(SchemeId id) {
  switch (id) {
    case SchemeId::kInt8Baseline:
      return kInt8Format;
    case SchemeId::kPr1406:
      return "pr1406_mixed_int6_v1";
    case SchemeId::kPr461:
      return "pr461_mixed_int5_int6_v1";
    case SchemeId::kPr456:
      return "pr456_mixed_int5_int6_v1";
    case SchemeId::kPr562:
      return "pr562_mixed_int5_int6_v1";
    case SchemeId::kPr1855:
      return "pr1855_sdclip_gptq_lqer_v1";
  }
  fail("invalid quantization scheme {}", static_cast<int>(id));
}

bool is_known_quant_format(std::string_view format) {
  for (const auto& scheme : enum_names(SchemeId{})) {
    if (scheme_quant_format(scheme.value) == format) return true;
  }
  return false;
}

}  // namespace pgolf
