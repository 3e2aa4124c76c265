// The code bytes pgolf counts against the 16,000,000-byte cap, the way the
// records count theirs: compressed. The counted files are the evaluator's
// source closure (what `pgolf eval` needs to be rebuilt, plus the build
// files), bundled at build time by tools/code_bundle.cpp into one
// reproducible ustar archive compressed with lrzip's ZPAQ (brotli where lrzip
// is missing), build/generated/pgolf-code.tar.lrz; the counted bytes are that
// file's size (docs/artifact.md, "Code bytes").
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace pgolf {

struct CodeSize {
  int64_t bytes;            // counted: the compressed bundle's size
  int64_t files;            // files in the bundle
  int64_t raw_bytes;        // their bytes, uncompressed
  std::string_view codec;   // the bundle's compression: "lrzip" (ZPAQ) or "brotli"
  std::string_view bundle;  // its file name, in the build's generated/ folder
};

struct CodeFile {
  std::string path;  // relative to the checkout
  int64_t bytes;
};

CodeSize code_size();
// The bundle's files with their sizes, sorted by path (generated).
const std::vector<CodeFile>& code_file_table();
// The same paths alone: what `pgolf submit` copies into a record folder.
const std::vector<std::string>& code_files();
// The count for people: the counted bytes and the bundle, then files and raw
// bytes per folder (with `every_file`, one line per file instead), e.g.
//   Code: 134,967 bytes counted (pgolf-code.tar.br: 125 files, 551,282 raw bytes, brotli)
//     src/artifact     6 files    55,617 raw bytes
std::string code_size_breakdown(bool every_file = false);

}  // namespace pgolf
