// Building a dataset (`pgolf data`): read documents, train a SentencePiece
// tokenizer with the challenge's settings, and write challenge shards.
// The conventions follow the official exporter
// (openai/parameter-golf data/download_hf_docs_and_tokenize.py): each document
// becomes [BOS] + encode(text), no EOS, shards of at most 10^8 tokens.
//
// With `caseops`, those of the record's CaseOps data (its
// prepare_caseops_data.py): each document becomes [BOS] +
// encode(caseops_encode(text)), shards of at most 10^7 tokens, and each val
// shard gets a byte sidecar fineweb_val_bytes_NNNNNN.bin (data/shard.h) with,
// per token, the bytes of the ORIGINAL text it stands for: 0 for BOS and the
// case operators, else CaseOpsByteCounter over the token's surface.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "data/shard.h"

namespace pgolf {

class Tokenizer;

// ---- Reading documents -------------------------------------------------------

// .jsonl: one {"text": ...} object per line (blank lines skipped).
std::vector<std::string> read_jsonl_documents(const std::filesystem::path& file);
// A .jsonl file, any other text file (the whole file is one document), or a
// folder searched recursively in sorted order (files that are not UTF-8 text are skipped).
std::vector<std::string> read_documents(const std::filesystem::path& input);
std::vector<std::string> read_documents(const std::vector<std::filesystem::path>& inputs);

// The offline default corpus: the Python 3.11 documentation sources shipped by
// Debian's python3.11-doc (about 12 MB of English prose), one document per file.
inline constexpr const char* kDefaultCorpusDir = "/usr/share/doc/python3.11/html/_sources";
std::vector<std::string> default_corpus(const std::filesystem::path& dir = kDefaultCorpusDir);

// ---- Tokenizer training ------------------------------------------------------

struct TokenizerTrainingOptions {
  int64_t vocab_size = 1024;
  // SentencePiece's default, which the official exporter keeps: longer
  // documents are silently left out of tokenizer training.
  int64_t max_sentence_length = 4192;
  bool quiet = false;
};

struct TokenizerTrainingReport {
  int64_t sentences = 0;     // non-empty documents handed to SentencePiece
  int64_t skipped_long = 0;  // of those, longer than max_sentence_length bytes
};

// The text SentencePiece trains on for one document: NUL → space, then Python's
// str.strip() (Unicode whitespace), as the official exporter does.
std::string training_text(std::string_view document);

// Trains a BPE model with the official settings and writes model_file (which
// must end in .model) and the matching .vocab beside it.
TokenizerTrainingReport train_tokenizer(std::span<const std::string> documents,
                                        const std::filesystem::path& model_file,
                                        const TokenizerTrainingOptions& options);

// ---- Shards ------------------------------------------------------------------

// prepare_caseops_data.py's shard size.
inline constexpr int64_t kCaseOpsShardTokens = 10'000'000;

struct DatasetOptions {
  double val_fraction = 0.1;  // the last fraction of the documents form the val split
  int64_t val_docs = -1;      // >= 0: exactly this many last documents instead
  // The val split is taken from the start instead of the end (the order of the
  // official exporter and of prepare_caseops_data.py, which read the first
  // documents of docs_selected.jsonl as validation).
  bool val_first = false;
  int64_t shard_tokens = kMaxShardTokens;
  bool caseops = false;  // the CaseOps transform, and the val byte sidecar
  bool quiet = false;
};

struct ShardInfo {
  std::string name;
  int64_t tokens = 0;
  int64_t bytes = 0;
};

struct SplitStats {
  int64_t docs = 0;
  int64_t tokens = 0;      // including one BOS per document
  int64_t utf8_bytes = 0;  // raw text
  // What val_bpb divides by, over targets 1..tokens-1: the byte LUTs' counts,
  // or with CaseOps the original bytes (the sidecar's counts).
  int64_t eval_bytes = 0;
  std::vector<ShardInfo> files;
  std::vector<ShardInfo> byte_files;  // the val split's byte sidecars (CaseOps)
};

struct DatasetStats {
  int64_t vocab_size = 0;
  SplitStats train;
  SplitStats val;
};

// Whether the tokenizer has each CaseOps operator (U+E001..U+E004) as a piece.
bool is_caseops_tokenizer(const Tokenizer& tokenizer);

// How many of num_docs documents go to the val split (at least one each way).
int64_t val_doc_count(int64_t num_docs, const DatasetOptions& options);

// Writes out_dir/fineweb_{train,val}_NNNNNN.bin (and, with CaseOps,
// fineweb_val_bytes_NNNNNN.bin) and out_dir/stats.json, removing stale shards
// of an earlier run first. Each split keeps the documents' order.
DatasetStats write_dataset(const std::vector<std::string>& documents, const Tokenizer& tokenizer,
                           const std::filesystem::path& out_dir, const DatasetOptions& options);

}  // namespace pgolf
