// The quant formats an artifact can name (QuantizedModel::format): one per
// scheme (quant/scheme.h). Apart from the quantizers, so that reading an
// artifact needs none of them.
#pragma once

#include <string_view>

#include "config/enums.h"

namespace pgolf {

// The QuantizedModel::format an entry's export carries ("int8_clean_per_row_v1", ...).
std::string_view scheme_quant_format(SchemeId id);
// Whether an artifact's quant format is one this pgolf writes.
bool is_known_quant_format(std::string_view format);

}  // namespace pgolf
