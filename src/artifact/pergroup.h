// The per-group codec (COMPRESSOR=pergroup), record #1855's
// _serialize_pergroup (docs/entries/pr1855.md §7.7) on pgolf's payload:
//
//   - the int8 code matrices of seven roles form one group each, in this
//     order: tok_emb.weight, then blocks.{i}.attn.c_k / c_q / c_v / proj and
//     blocks.{i}.mlp.fc / proj (".weight"), layers ascending;
//   - in the groups tok_emb, c_q and mlp.fc the rows of each matrix are first
//     reordered by a greedy L1 nearest-neighbour walk (start at row 0, go to
//     the closest unused row, ties to the lowest index); the orders are kept
//     as uint16 little-endian;
//   - each matrix is written transposed (column-major), each group is
//     compressed by lrzip's ZPAQ (artifact/lrzip.h), level 9;
//   - every other payload byte (scales, small tensors, gates, LQER factors),
//     in payload order, is one brotli stream (quality 11, 16 MiB window), and
//     the row orders another (quality 11, 4 MiB window).
//
// Container, as the record's: "PGRP", u32 stream count (9), u32 length of
// each stream, the streams (7 groups, remainder, orders); an empty group is
// an empty stream. Which chunks are codes, and their shapes, come from the
// artifact's tensor table, so the container stores no names or shapes.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace pgolf {

// An int8 code matrix [rows, cols] at `offset` in the uncompressed payload.
struct CodeMatrix {
  std::string name;  // the tensor's name: its role picks the group
  int64_t rows = 0;
  int64_t cols = 0;
  uint64_t offset = 0;
};

// The group of a tensor name (0..6), or -1 for the remainder.
int pergroup_group(const std::string& name);

// `level`: lrzip's, 1-9 (the record's 9).
std::string pergroup_compress(std::string_view payload, const std::vector<CodeMatrix>& codes,
                              int level = 9);

// Rebuilds the payload of `payload_bytes` bytes; any damage to the container
// or its streams is one pgolf::Error.
std::string pergroup_decompress(std::string_view blob, const std::vector<CodeMatrix>& codes,
                                uint64_t payload_bytes);

// Sizes of the container's streams, for reports: 7 groups, remainder, orders.
std::vector<uint64_t> pergroup_stream_sizes(std::string_view blob);

// The greedy L1 nearest-neighbour row order of an int8 matrix (exposed for tests).
std::vector<uint16_t> similarity_order(const int8_t* rows, int64_t count, int64_t cols);

}  // namespace pgolf
