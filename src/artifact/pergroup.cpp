// The per-group codec (see pergroup.h). The groups are compressed in parallel,
// one single-threaded lrzip process each, so the bytes never depend on the
// machine's core count.
#include "artifact/pergroup.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>
#include <future>
#include <limits>

#include "artifact/compress.h"
#include "artifact/lrzip.h"
#include "common/error.h"

namespace pgolf {
namespace {

constexpr std::string_view kMagic = "PGRP";
// The record's _GROUP_ORDER, by pgolf's tensor names.
constexpr std::array<std::string_view, 7> kGroupKeys = {
    "tok_emb.weight",   "attn.c_k.weight", "attn.c_q.weight", "attn.c_v.weight",
    "attn.proj.weight", "mlp.fc.weight",   "mlp.proj.weight"};
constexpr size_t kGroups = kGroupKeys.size();
constexpr size_t kStreams = kGroups + 2;  // + remainder, row orders
// _SIMSORT_KEYS: tok_emb, c_q, mlp.fc.
constexpr bool is_sorted_group(int group) { return group == 0 || group == 2 || group == 5; }
constexpr int kBrotliQuality = 11;
constexpr int kRemainderWindow = 24;
constexpr int kOrdersWindow = 22;

static_assert(std::endian::native == std::endian::little, "the container is little-endian");

// "blocks.<i>.<key>" -> (i, key); (-1, name) otherwise.
std::pair<int64_t, std::string_view> split_layer(std::string_view name) {
  constexpr std::string_view prefix = "blocks.";
  if (!name.starts_with(prefix)) return {-1, name};
  const size_t dot = name.find('.', prefix.size());
  if (dot == std::string_view::npos || dot == prefix.size()) return {-1, name};
  int64_t layer = 0;
  for (const char c : name.substr(prefix.size(), dot - prefix.size())) {
    if (c < '0' || c > '9') return {-1, name};
    layer = layer * 10 + (c - '0');
  }
  return {layer, name.substr(dot + 1)};
}

struct Member {
  const CodeMatrix* code;
  int64_t layer;
};

// Each group's matrices, layers ascending (stable for equal layers).
std::array<std::vector<Member>, kGroups> group_members(const std::vector<CodeMatrix>& codes) {
  std::array<std::vector<Member>, kGroups> groups;
  for (const CodeMatrix& code : codes) {
    const int group = pergroup_group(code.name);
    if (group >= 0) groups[group].push_back({&code, split_layer(code.name).first});
  }
  for (auto& members : groups) {
    std::stable_sort(members.begin(), members.end(),
                     [](const Member& a, const Member& b) { return a.layer < b.layer; });
  }
  return groups;
}

// Payload ranges [offset, offset + bytes) of the grouped matrices, sorted.
std::vector<std::pair<uint64_t, uint64_t>> grouped_ranges(
    const std::array<std::vector<Member>, kGroups>& groups, uint64_t payload_bytes) {
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  for (const auto& members : groups) {
    for (const Member& m : members) {
      const uint64_t bytes = static_cast<uint64_t>(m.code->rows * m.code->cols);
      PGOLF_CHECK(m.code->rows > 0 && m.code->cols > 0 && m.code->offset <= payload_bytes &&
                      bytes <= payload_bytes - m.code->offset,
                  "pergroup: '{}' ({} x {} at {}) lies outside the {}-byte payload", m.code->name,
                  m.code->rows, m.code->cols, m.code->offset, payload_bytes);
      PGOLF_CHECK(!is_sorted_group(pergroup_group(m.code->name)) ||
                      m.code->rows <= std::numeric_limits<uint16_t>::max() + 1,
                  "pergroup: '{}' has {} rows; row orders are uint16", m.code->name, m.code->rows);
      ranges.emplace_back(m.code->offset, bytes);
    }
  }
  std::sort(ranges.begin(), ranges.end());
  for (size_t i = 1; i < ranges.size(); ++i) {
    PGOLF_CHECK(ranges[i - 1].first + ranges[i - 1].second <= ranges[i].first,
                "pergroup: two code matrices overlap in the payload");
  }
  return ranges;
}

// The payload bytes outside the grouped ranges, in order.
std::string remainder_of(std::string_view payload,
                         const std::vector<std::pair<uint64_t, uint64_t>>& ranges) {
  std::string out;
  uint64_t pos = 0;
  for (const auto& [offset, bytes] : ranges) {
    out.append(payload.substr(pos, offset - pos));
    pos = offset + bytes;
  }
  out.append(payload.substr(pos));
  return out;
}

void append_u32(std::string& out, uint64_t value) {
  PGOLF_CHECK(value <= std::numeric_limits<uint32_t>::max(),
              "pergroup: a stream of {} bytes does not fit the container", value);
  const auto v = static_cast<uint32_t>(value);
  out.append(reinterpret_cast<const char*>(&v), sizeof v);
}

uint32_t read_u32(std::string_view bytes, size_t offset) {
  uint32_t v;
  std::memcpy(&v, bytes.data() + offset, sizeof v);
  return v;
}

std::vector<std::string_view> unpack_streams(std::string_view blob) {
  PGOLF_CHECK(blob.size() >= 8 && blob.substr(0, 4) == kMagic,
              "pergroup: not a per-group container (bad magic or truncated)");
  const uint32_t count = read_u32(blob, 4);
  PGOLF_CHECK(count == kStreams, "pergroup: {} streams, expected {}", count, kStreams);
  size_t offset = 8 + 4 * size_t{count};
  PGOLF_CHECK(blob.size() >= offset, "pergroup: truncated stream table");
  std::vector<std::string_view> streams;
  for (uint32_t i = 0; i < count; ++i) {
    const uint32_t length = read_u32(blob, 8 + 4 * size_t{i});
    PGOLF_CHECK(length <= blob.size() - offset,
                "pergroup: stream {} ({} bytes) runs past the end of the container", i, length);
    streams.push_back(blob.substr(offset, length));
    offset += length;
  }
  PGOLF_CHECK(offset == blob.size(), "pergroup: {} unexpected trailing bytes",
              blob.size() - offset);
  return streams;
}

}  // namespace

int pergroup_group(const std::string& name) {
  const auto [layer, key] = split_layer(name);
  if (layer < 0) return name == kGroupKeys[0] ? 0 : -1;
  for (size_t g = 1; g < kGroups; ++g) {
    if (key == kGroupKeys[g]) return static_cast<int>(g);
  }
  return -1;
}

std::vector<uint16_t> similarity_order(const int8_t* rows, int64_t count, int64_t cols) {
  std::vector<uint16_t> order;
  if (count == 0) return order;
  order.reserve(static_cast<size_t>(count));
  std::vector<char> used(static_cast<size_t>(count), 0);
  int64_t current = 0;
  used[0] = 1;
  order.push_back(0);
  // L1 distances of int8 rows are exact integers (the script's fp32 sums of
  // |differences| are exact too: at most 255 * cols < 2^24).
  for (int64_t step = 1; step < count; ++step) {
    const int8_t* cur = rows + current * cols;
    int64_t best = -1;
    int64_t best_distance = std::numeric_limits<int64_t>::max();
    for (int64_t r = 0; r < count; ++r) {
      if (used[r]) continue;
      const int8_t* row = rows + r * cols;
      int32_t distance = 0;
      for (int64_t c = 0; c < cols; ++c) distance += std::abs(int32_t{row[c]} - int32_t{cur[c]});
      if (distance < best_distance) {
        best_distance = distance;
        best = r;
      }
    }
    used[best] = 1;
    order.push_back(static_cast<uint16_t>(best));
    current = best;
  }
  return order;
}

std::string pergroup_compress(std::string_view payload, const std::vector<CodeMatrix>& codes,
                              int level) {
  const auto groups = group_members(codes);
  const auto ranges = grouped_ranges(groups, payload.size());
  std::string orders;
  std::array<std::string, kGroups> blobs;
  for (size_t g = 0; g < kGroups; ++g) {
    for (const Member& m : groups[g]) {
      const int64_t rows = m.code->rows, cols = m.code->cols;
      const auto* codes8 = reinterpret_cast<const int8_t*>(payload.data() + m.code->offset);
      std::vector<uint16_t> order;
      if (is_sorted_group(static_cast<int>(g))) {
        order = similarity_order(codes8, rows, cols);
        orders.append(reinterpret_cast<const char*>(order.data()), order.size() * 2);
      }
      // Column-major: byte (c, k) is row order[k] (or k), column c.
      std::string& blob = blobs[g];
      const size_t base = blob.size();
      blob.resize(base + static_cast<size_t>(rows * cols));
      for (int64_t k = 0; k < rows; ++k) {
        const int64_t r = order.empty() ? k : order[k];
        for (int64_t c = 0; c < cols; ++c) {
          blob[base + static_cast<size_t>(c * rows + k)] = static_cast<char>(codes8[r * cols + c]);
        }
      }
    }
  }
  std::array<std::future<std::string>, kGroups> compressed;
  for (size_t g = 0; g < kGroups; ++g) {
    compressed[g] = std::async(std::launch::async, [&blobs, g, level] {
      return blobs[g].empty() ? std::string() : lrzip_compress(blobs[g], level);
    });
  }
  std::vector<std::string> streams;
  for (auto& f : compressed) streams.push_back(f.get());
  streams.push_back(
      brotli_compress(remainder_of(payload, ranges), kBrotliQuality, kRemainderWindow));
  streams.push_back(orders.empty() ? std::string()
                                   : brotli_compress(orders, kBrotliQuality, kOrdersWindow));
  std::string out(kMagic);
  append_u32(out, streams.size());
  for (const std::string& s : streams) append_u32(out, s.size());
  for (const std::string& s : streams) out += s;
  return out;
}

std::string pergroup_decompress(std::string_view blob, const std::vector<CodeMatrix>& codes,
                                uint64_t payload_bytes) {
  const std::vector<std::string_view> streams = unpack_streams(blob);
  const auto groups = group_members(codes);
  const auto ranges = grouped_ranges(groups, payload_bytes);
  uint64_t grouped_bytes = 0, order_bytes = 0;
  std::array<uint64_t, kGroups> group_bytes{};
  for (size_t g = 0; g < kGroups; ++g) {
    for (const Member& m : groups[g]) {
      group_bytes[g] += static_cast<uint64_t>(m.code->rows * m.code->cols);
      if (is_sorted_group(static_cast<int>(g))) order_bytes += 2 * m.code->rows;
    }
    grouped_bytes += group_bytes[g];
    PGOLF_CHECK(group_bytes[g] > 0 || streams[g].empty(),
                "pergroup: stream {} holds data for an empty group", g);
  }
  std::array<std::future<std::string>, kGroups> raw;
  for (size_t g = 0; g < kGroups; ++g) {
    raw[g] = std::async(std::launch::async, [&streams, &group_bytes, g] {
      return group_bytes[g] == 0 ? std::string() : lrzip_decompress(streams[g], group_bytes[g]);
    });
  }
  std::array<std::string, kGroups> blobs;
  for (size_t g = 0; g < kGroups; ++g) blobs[g] = raw[g].get();
  const std::string remainder = brotli_decompress(streams[kGroups], payload_bytes - grouped_bytes);
  const std::string orders =
      order_bytes == 0 ? std::string() : brotli_decompress(streams[kGroups + 1], order_bytes);
  PGOLF_CHECK(order_bytes > 0 || streams[kGroups + 1].empty(),
              "pergroup: row orders stored for no sorted group");

  std::string payload(payload_bytes, '\0');
  // The remainder fills the gaps between the grouped ranges, in order.
  uint64_t pos = 0, taken = 0;
  const auto fill_gap = [&](uint64_t end) {
    std::memcpy(payload.data() + pos, remainder.data() + taken, end - pos);
    taken += end - pos;
  };
  for (const auto& [offset, bytes] : ranges) {
    fill_gap(offset);
    pos = offset + bytes;
  }
  fill_gap(payload_bytes);
  size_t order_pos = 0;
  for (size_t g = 0; g < kGroups; ++g) {
    size_t at = 0;
    for (const Member& m : groups[g]) {
      const int64_t rows = m.code->rows, cols = m.code->cols;
      std::vector<uint16_t> order;
      if (is_sorted_group(static_cast<int>(g))) {
        order.resize(static_cast<size_t>(rows));
        std::memcpy(order.data(), orders.data() + order_pos, 2 * static_cast<size_t>(rows));
        order_pos += 2 * static_cast<size_t>(rows);
        std::vector<char> seen(static_cast<size_t>(rows), 0);
        for (const uint16_t r : order) {
          PGOLF_CHECK(r < rows && !seen[r],
                      "pergroup: '{}': the stored row order is not a permutation", m.code->name);
          seen[r] = 1;
        }
      }
      char* out = payload.data() + m.code->offset;
      for (int64_t k = 0; k < rows; ++k) {
        const int64_t r = order.empty() ? k : order[k];
        for (int64_t c = 0; c < cols; ++c) {
          out[r * cols + c] = blobs[g][at + static_cast<size_t>(c * rows + k)];
        }
      }
      at += static_cast<size_t>(rows * cols);
    }
  }
  return payload;
}

std::vector<uint64_t> pergroup_stream_sizes(std::string_view blob) {
  std::vector<uint64_t> sizes;
  for (const std::string_view s : unpack_streams(blob)) sizes.push_back(s.size());
  return sizes;
}

}  // namespace pgolf
