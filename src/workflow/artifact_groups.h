// An artifact's bytes by tensor group (token embedding, attention, MLP,
// n-gram/value embeddings, head, scalars and control tensors), for reports.
// The payload is compressed as one stream, so a group's compressed share is
// estimated pro rata from its uncompressed bytes; the header is its own group.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "artifact/inspect.h"

namespace pgolf {

struct SizeGroup {
  std::string name;
  int64_t tensors = 0;
  int64_t params = 0;
  int64_t stored_bytes = 0;     // uncompressed payload bytes
  double compressed_bytes = 0;  // estimated share of the file
};

// The group a tensor name belongs to.
std::string_view tensor_group(std::string_view name);

// Groups in a fixed order (empty ones dropped), then "header" (preamble and
// JSON header); the compressed column sums to the file size.
std::vector<SizeGroup> size_by_group(const ArtifactReport& report);

}  // namespace pgolf
