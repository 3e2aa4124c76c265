// Documents in, tokenizer and shards out. Everything is held in memory: the
// corpora this is meant for (tens of MB) fit easily, and it keeps the order of
// documents, and hence the train/val split, trivially deterministic.
#include "data/corpus.h"

#include <fmt/format.h>
#include <sentencepiece_trainer.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <future>
#include <nlohmann/json.hpp>
#include <span>
#include <thread>
#include <unordered_map>

#include "common/error.h"
#include "common/format.h"
#include "common/fs.h"
#include "common/progress.h"
#include "data/caseops.h"
#include "data/tokenizer.h"
#include "data/utf8.h"

namespace pgolf {
namespace {

// ---- UTF-8 -------------------------------------------------------------------

// UTF-8 without NUL bytes: what we accept as a text file.
bool is_utf8_text(std::string_view s) {
  for (size_t pos = 0; pos < s.size();) {
    const auto [cp, len] = decode_utf8(s, pos);
    if (len == 0 || cp == 0) return false;
    pos += len;
  }
  return true;
}

// Python's str.isspace() set, which str.strip() removes.
bool is_python_space(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 ||
         c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
         c == 0x205F || c == 0x3000;
}

std::string_view strip_python_space(std::string_view s) {
  while (!s.empty()) {
    const auto [cp, len] = decode_utf8(s, 0);
    if (len == 0 || !is_python_space(cp)) break;
    s.remove_prefix(len);
  }
  while (!s.empty()) {
    size_t start = s.size() - 1;
    while (start > 0 && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) --start;
    const auto [cp, len] = decode_utf8(s, start);
    if (len != s.size() - start || !is_python_space(cp)) break;
    s.remove_suffix(len);
  }
  return s;
}

// ---- Reading -----------------------------------------------------------------

bool is_jsonl(const std::filesystem::path& file) { return file.extension() == ".jsonl"; }

std::string parse_jsonl_line(const std::filesystem::path& file, int64_t line_number,
                             std::string_view line) {
  nlohmann::json value;
  try {
    value = nlohmann::json::parse(line);
  } catch (const nlohmann::json::exception& e) {
    fail("{}:{}: malformed JSON line ({})", file.string(), line_number, e.what());
  }
  const auto text = value.is_object() ? value.find("text") : value.end();
  PGOLF_CHECK(value.is_object() && text != value.end() && text->is_string(),
              "{}:{}: expected an object with a \"text\" string", file.string(), line_number);
  return text->get<std::string>();
}

std::vector<std::string> read_directory(const std::filesystem::path& dir) {
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir)) {
    if (entry.is_regular_file()) files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  std::vector<std::string> documents;
  for (const auto& file : files) {
    if (is_jsonl(file)) {
      for (auto& doc : read_jsonl_documents(file)) documents.push_back(std::move(doc));
      continue;
    }
    std::string text = read_file(file);
    if (is_utf8_text(text)) documents.push_back(std::move(text));  // binary files: skipped
  }
  return documents;
}

// ---- Tokenizer training ------------------------------------------------------

// Feeds SentencePiece the non-empty training texts, one document per sentence.
class DocumentIterator : public sentencepiece::SentenceIterator {
 public:
  explicit DocumentIterator(std::span<const std::string> documents) : documents_(documents) {
    skip_empty();
  }
  bool done() const override { return index_ >= documents_.size(); }
  const std::string& value() const override { return current_; }
  void Next() override {
    ++index_;
    skip_empty();
  }
  sentencepiece::util::Status status() const override { return {}; }

 private:
  void skip_empty() {
    for (; index_ < documents_.size(); ++index_) {
      current_ = training_text(documents_[index_]);
      if (!current_.empty()) return;
    }
  }

  std::span<const std::string> documents_;
  size_t index_ = 0;
  std::string current_;
};

TokenizerTrainingReport count_training_sentences(std::span<const std::string> documents,
                                                 int64_t max_sentence_length) {
  TokenizerTrainingReport report;
  for (const auto& doc : documents) {
    const std::string text = training_text(doc);
    if (text.empty()) continue;
    ++report.sentences;
    if (static_cast<int64_t>(text.size()) > max_sentence_length) ++report.skipped_long;
  }
  return report;
}

// The official exporter's SentencePiece arguments (spec quantize-eval-ttt §1.1).
std::unordered_map<std::string, std::string> official_trainer_args(
    const std::string& prefix, const TokenizerTrainingOptions& options) {
  return {
      {"model_prefix", prefix},
      {"model_type", "bpe"},
      {"vocab_size", std::to_string(options.vocab_size)},
      {"character_coverage", "0.999"},
      {"byte_fallback", "true"},
      {"split_digits", "true"},
      {"normalization_rule_name", "nmt_nfkc"},
      {"add_dummy_prefix", "false"},
      {"pad_id", "0"},
      {"bos_id", "1"},
      {"eos_id", "2"},
      {"unk_id", "3"},
      {"hard_vocab_limit", "false"},
      {"max_sentence_length", std::to_string(options.max_sentence_length)},
      // SentencePiece logs every merge at INFO; warnings and errors still show.
      {"minloglevel", options.quiet ? "2" : "1"},
  };
}

// ---- Shards ------------------------------------------------------------------

// Appends tokens to fineweb_<split>_NNNNNN.bin files of at most shard_tokens each
// (`split` is "train", "val" or "val_bytes": a byte sidecar has the same layout).
class ShardWriter {
 public:
  ShardWriter(std::filesystem::path dir, std::string split, int64_t shard_tokens,
              std::vector<ShardInfo>& files)
      : dir_(std::move(dir)),
        split_(std::move(split)),
        shard_tokens_(shard_tokens),
        files_(files) {}

  void append(std::span<const uint16_t> tokens) {
    while (!tokens.empty()) {
      const size_t room = static_cast<size_t>(shard_tokens_) - buffer_.size();
      const size_t k = std::min(room, tokens.size());
      buffer_.insert(buffer_.end(), tokens.begin(), tokens.begin() + k);
      tokens = tokens.subspan(k);
      if (static_cast<int64_t>(buffer_.size()) == shard_tokens_) flush();
    }
  }

  void flush() {
    if (buffer_.empty()) return;
    const std::string name = fmt::format("fineweb_{}_{:06d}.bin", split_, files_.size());
    write_shard(dir_ / name, buffer_);
    const int64_t n = static_cast<int64_t>(buffer_.size());
    files_.push_back({name, n, kShardHeaderBytes + 2 * n});
    buffer_.clear();
  }

 private:
  std::filesystem::path dir_;
  std::string split_;
  int64_t shard_tokens_;
  std::vector<ShardInfo>& files_;
  std::vector<uint16_t> buffer_;
};

// Plain-array copies of the byte LUTs for the per-token loop.
struct ByteTables {
  std::vector<int16_t> base;
  std::vector<uint8_t> space;
  std::vector<uint8_t> boundary;

  explicit ByteTables(const ByteLuts& luts) {
    const auto to_vector = [](const torch::Tensor& t, auto tag) {
      using T = decltype(tag);
      const torch::Tensor c = t.contiguous();
      const T* p = c.data_ptr<T>();
      return std::vector<T>(p, p + c.numel());
    };
    base = to_vector(luts.base_bytes, int16_t{});
    const auto space_b = to_vector(luts.has_leading_space, bool{});
    const auto boundary_b = to_vector(luts.is_boundary, bool{});
    space.assign(space_b.begin(), space_b.end());
    boundary.assign(boundary_b.begin(), boundary_b.end());
  }

  int64_t bytes(int prev, int target) const {
    return base[target] + (space[target] && !boundary[prev] ? 1 : 0);
  }
};

// One document's token ids and, with CaseOps, each token's original bytes.
struct EncodedDocument {
  std::vector<int> ids;
  std::vector<uint16_t> bytes;
};

EncodedDocument encode_document(const Tokenizer& tokenizer, const std::string& doc, bool caseops) {
  if (!caseops) return {tokenizer.encode(doc), {}};
  Tokenizer::Pieces pieces = tokenizer.encode_pieces(caseops_encode(doc));
  EncodedDocument out{std::move(pieces.ids), {}};
  out.bytes.reserve(out.ids.size());
  CaseOpsByteCounter counter;
  for (const auto& surface : pieces.surfaces) {
    const int64_t n = counter.count(surface);
    PGOLF_CHECK(n <= UINT16_MAX, "a token of {} original bytes does not fit the uint16 sidecar", n);
    out.bytes.push_back(static_cast<uint16_t>(n));
  }
  counter.finish();
  return out;
}

// Encodes documents in parallel: SentencePieceProcessor::Encode is const and thread-safe.
// `first` numbers the batch's first document in error messages.
std::vector<EncodedDocument> encode_batch(const Tokenizer& tokenizer,
                                          std::span<const std::string> docs, bool caseops,
                                          size_t first) {
  const size_t threads = std::max(1u, std::thread::hardware_concurrency());
  std::vector<EncodedDocument> out(docs.size());
  std::vector<std::future<void>> jobs;
  for (size_t t = 0; t < threads; ++t) {
    jobs.push_back(std::async(std::launch::async, [&, t] {
      for (size_t i = t; i < docs.size(); i += threads) {
        try {
          out[i] = encode_document(tokenizer, docs[i], caseops);
        } catch (const Error& e) {
          fail("document {}: {}", first + i, e.what());
        }
      }
    }));
  }
  for (auto& job : jobs) job.get();  // rethrows an encoding error
  return out;
}

void write_split(std::span<const std::string> docs, const Tokenizer& tokenizer,
                 const ByteTables& tables, const std::string& split,
                 const std::filesystem::path& out_dir, const DatasetOptions& options,
                 SplitStats& stats) {
  constexpr size_t kBatchDocs = 256;  // small enough for a live progress line
  ShardWriter writer(out_dir, split, options.shard_tokens, stats.files);
  // The byte sidecar: val only, cut at the same token counts as the val shards.
  const bool sidecar = options.caseops && split == "val";
  ShardWriter byte_writer(out_dir, split + "_bytes", options.shard_tokens, stats.byte_files);
  Progress progress(fmt::format("tokenizing {}", split), static_cast<int64_t>(docs.size()), "docs",
                    options.quiet);
  const int bos = tokenizer.bos_id();
  int prev = -1;  // the split's first token is no target
  std::vector<uint16_t> tokens, bytes;
  for (size_t begin = 0; begin < docs.size(); begin += kBatchDocs) {
    const auto batch = docs.subspan(begin, std::min(kBatchDocs, docs.size() - begin));
    const auto encoded = encode_batch(tokenizer, batch, options.caseops, begin);
    for (size_t i = 0; i < batch.size(); ++i) {
      tokens.assign(1, static_cast<uint16_t>(bos));
      tokens.insert(tokens.end(), encoded[i].ids.begin(), encoded[i].ids.end());
      if (options.caseops) {
        // The original bytes; BOS stands for none (and is never a target's here).
        bytes.assign(1, 0);
        bytes.insert(bytes.end(), encoded[i].bytes.begin(), encoded[i].bytes.end());
        for (const uint16_t b : bytes) stats.eval_bytes += b;
        if (sidecar) byte_writer.append(bytes);
      } else {
        for (const uint16_t t : tokens) {
          if (prev >= 0) stats.eval_bytes += tables.bytes(prev, t);
          prev = t;
        }
      }
      stats.docs += 1;
      stats.tokens += static_cast<int64_t>(tokens.size());
      stats.utf8_bytes += static_cast<int64_t>(batch[i].size());
      writer.append(tokens);
    }
    progress.update(static_cast<int64_t>(begin + batch.size()));
  }
  writer.flush();
  byte_writer.flush();
  progress.finish(fmt::format("{} tokens", with_commas(stats.tokens)));
}

nlohmann::json split_json(const SplitStats& s) {
  nlohmann::json files = nlohmann::json::array();
  for (const auto& f : s.files)
    files.push_back({{"name", f.name}, {"tokens", f.tokens}, {"bytes", f.bytes}});
  nlohmann::json out = {{"docs", s.docs},
                        {"tokens", s.tokens},
                        {"utf8_bytes", s.utf8_bytes},
                        {"eval_bytes", s.eval_bytes},
                        {"eval_target_tokens", std::max<int64_t>(0, s.tokens - 1)},
                        {"files", files}};
  if (!s.byte_files.empty()) {
    nlohmann::json byte_files = nlohmann::json::array();
    for (const auto& f : s.byte_files)
      byte_files.push_back({{"name", f.name}, {"tokens", f.tokens}, {"bytes", f.bytes}});
    out["byte_sidecar_files"] = byte_files;
  }
  return out;
}

void write_stats(const std::filesystem::path& out_dir, const DatasetStats& stats,
                 const Tokenizer& tokenizer, const DatasetOptions& options) {
  const nlohmann::json json = {
      {"backend", "pgolf"},
      {"tokenizer", tokenizer.path().string()},
      {"vocab_size", stats.vocab_size},
      {"bos_id", tokenizer.bos_id()},
      {"append_eos", false},
      {"text_transform", options.caseops ? std::string(kCaseOpsName) : std::string("identity")},
      {"val_first", options.val_first},
      {"shard_tokens", options.shard_tokens},
      {"splits", {{"train", split_json(stats.train)}, {"val", split_json(stats.val)}}}};
  write_file_atomic(out_dir / "stats.json", json.dump(2) + "\n");
}

void check_tokenizer_transform(const Tokenizer& tokenizer, bool caseops) {
  const bool reserved = is_caseops_tokenizer(tokenizer);
  PGOLF_CHECK(!caseops || reserved,
              "tokenizer {} has no pieces for the CaseOps operators U+E001..U+E004: not a CaseOps "
              "tokenizer",
              tokenizer.path().string());
  PGOLF_CHECK(caseops || !reserved,
              "tokenizer {} reserves the CaseOps operators U+E001..U+E004: its data must be built "
              "with the CaseOps transform (pgolf data --caseops)",
              tokenizer.path().string());
}

void remove_stale_shards(const std::filesystem::path& out_dir) {
  for (const char* split : {"train", "val"}) {  // "val" matches the val_bytes sidecars too
    for (const auto& file :
         glob_files((out_dir / fmt::format("fineweb_{}_*.bin", split)).string())) {
      std::filesystem::remove(file);
    }
  }
}

}  // namespace

// ---- Public ------------------------------------------------------------------

std::vector<std::string> read_jsonl_documents(const std::filesystem::path& file) {
  const std::string content = read_file(file);
  std::vector<std::string> documents;
  int64_t line_number = 0;
  for (size_t pos = 0; pos < content.size();) {
    const size_t end = std::min(content.find('\n', pos), content.size());
    const std::string_view line(content.data() + pos, end - pos);
    ++line_number;
    pos = end + 1;
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    documents.push_back(parse_jsonl_line(file, line_number, line));
  }
  return documents;
}

std::vector<std::string> read_documents(const std::filesystem::path& input) {
  std::error_code ec;
  PGOLF_CHECK(std::filesystem::exists(input, ec), "input {}: no such file or folder",
              input.string());
  if (std::filesystem::is_directory(input)) return read_directory(input);
  if (is_jsonl(input)) return read_jsonl_documents(input);
  std::string text = read_file(input);
  PGOLF_CHECK(is_utf8_text(text), "input {}: not a UTF-8 text file", input.string());
  return {std::move(text)};
}

std::vector<std::string> read_documents(const std::vector<std::filesystem::path>& inputs) {
  std::vector<std::string> documents;
  for (const auto& input : inputs) {
    for (auto& doc : read_documents(input)) documents.push_back(std::move(doc));
  }
  return documents;
}

std::vector<std::string> default_corpus(const std::filesystem::path& dir) {
  constexpr int64_t kMinBytes = 5'000'000;
  const std::string install = "install it with: sudo apt-get install python3.11-doc";
  PGOLF_CHECK(std::filesystem::is_directory(dir), "default corpus {} is missing; {}", dir.string(),
              install);
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir)) {
    if (entry.is_regular_file() && entry.path().extension() == ".txt") {
      files.push_back(entry.path());
    }
  }
  std::sort(files.begin(), files.end());
  std::vector<std::string> documents;
  int64_t bytes = 0;
  for (const auto& file : files) {
    documents.push_back(read_file(file));
    bytes += static_cast<int64_t>(documents.back().size());
  }
  PGOLF_CHECK(bytes >= kMinBytes,
              "default corpus {} holds only {} bytes in {} .txt files (expected >= {}); {}",
              dir.string(), with_commas(bytes), files.size(), with_commas(kMinBytes), install);
  return documents;
}

std::string training_text(std::string_view document) {
  std::string text(document);
  std::replace(text.begin(), text.end(), '\0', ' ');
  return std::string(strip_python_space(text));
}

TokenizerTrainingReport train_tokenizer(std::span<const std::string> documents,
                                        const std::filesystem::path& model_file,
                                        const TokenizerTrainingOptions& options) {
  PGOLF_CHECK(model_file.extension() == ".model", "tokenizer {}: the file name must end in .model",
              model_file.string());
  const TokenizerTrainingReport report =
      count_training_sentences(documents, options.max_sentence_length);
  PGOLF_CHECK(report.sentences > report.skipped_long,
              "cannot train a tokenizer: none of the {} non-empty documents is at most {} bytes "
              "long (SentencePiece's max_sentence_length)",
              report.sentences, options.max_sentence_length);

  // Train under a temporary prefix, then rename: a killed run leaves no half model.
  const std::filesystem::path dir =
      model_file.parent_path().empty() ? "." : model_file.parent_path();
  std::filesystem::create_directories(dir);
  const std::filesystem::path tmp_prefix =
      dir / fmt::format("{}.tmp.{}", model_file.stem().string(), ::getpid());
  DocumentIterator sentences(documents);
  const auto status = sentencepiece::SentencePieceTrainer::Train(
      official_trainer_args(tmp_prefix.string(), options), &sentences);
  const std::filesystem::path tmp_model = tmp_prefix.string() + ".model";
  const std::filesystem::path tmp_vocab = tmp_prefix.string() + ".vocab";
  if (!status.ok()) {
    std::filesystem::remove(tmp_model);
    std::filesystem::remove(tmp_vocab);
    fail("training the tokenizer {} failed: {}", model_file.string(), status.ToString());
  }
  std::filesystem::rename(tmp_vocab, std::filesystem::path(model_file).replace_extension(".vocab"));
  std::filesystem::rename(tmp_model, model_file);
  return report;
}

bool is_caseops_tokenizer(const Tokenizer& tokenizer) {
  for (const char* op : {"\uE001", "\uE002", "\uE003", "\uE004"}) {
    if (tokenizer.is_unknown(tokenizer.piece_id(op))) return false;
  }
  return true;
}

int64_t val_doc_count(int64_t num_docs, const DatasetOptions& options) {
  PGOLF_CHECK(num_docs >= 2, "need at least 2 documents (one train, one val), got {}", num_docs);
  if (options.val_docs >= 0) {
    PGOLF_CHECK(options.val_docs >= 1 && options.val_docs < num_docs,
                "val_docs={} must be between 1 and {} (there are {} documents)", options.val_docs,
                num_docs - 1, num_docs);
    return options.val_docs;
  }
  PGOLF_CHECK(options.val_fraction > 0 && options.val_fraction < 1,
              "val_fraction={} must be between 0 and 1", options.val_fraction);
  const int64_t n = std::llround(static_cast<double>(num_docs) * options.val_fraction);
  return std::clamp<int64_t>(n, 1, num_docs - 1);
}

DatasetStats write_dataset(const std::vector<std::string>& documents, const Tokenizer& tokenizer,
                           const std::filesystem::path& out_dir, const DatasetOptions& options) {
  PGOLF_CHECK(tokenizer.vocab_size() <= 65536,
              "tokenizer {}: vocab_size={} does not fit the uint16 shard format",
              tokenizer.path().string(), tokenizer.vocab_size());
  PGOLF_CHECK(options.shard_tokens > 0, "shard_tokens must be positive, got {}",
              options.shard_tokens);
  const int64_t num_val = val_doc_count(static_cast<int64_t>(documents.size()), options);
  const std::span<const std::string> all(documents);
  const size_t num_train = all.size() - static_cast<size_t>(num_val);
  const auto train_docs = options.val_first ? all.last(num_train) : all.first(num_train);
  const auto val_docs = options.val_first ? all.first(static_cast<size_t>(num_val))
                                          : all.last(static_cast<size_t>(num_val));
  check_tokenizer_transform(tokenizer, options.caseops);

  std::filesystem::create_directories(out_dir);
  remove_stale_shards(out_dir);
  DatasetStats stats;
  stats.vocab_size = tokenizer.vocab_size();
  const ByteTables tables(build_byte_luts(tokenizer, stats.vocab_size));
  write_split(train_docs, tokenizer, tables, "train", out_dir, options, stats.train);
  write_split(val_docs, tokenizer, tables, "val", out_dir, options, stats.val);
  write_stats(out_dir, stats, tokenizer, options);
  return stats;
}

}  // namespace pgolf
