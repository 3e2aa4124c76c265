// `pgolf data`: text → tokenizer + challenge shards.
//
// Layout under --out DIR (the official exporter's folders):
//   DIR/tokenizers/<name>_<V>_bpe.model, .vocab        the trained tokenizer
//                                                       (not written with --tokenizer); named
//                                                       after the data so that a retrain never
//                                                       passes for the official fineweb_1024_bpe
//   DIR/datasets/<name>_sp<V>/fineweb_train_NNNNNN.bin  first documents
//   DIR/datasets/<name>_sp<V>/fineweb_val_NNNNNN.bin    last --val-fraction of them
//   DIR/datasets/<name>_sp<V>/stats.json                docs, tokens, bytes per split
//
// With --caseops (the record's CaseOps data: --tokenizer is its CaseOps model):
//   DIR/datasets/<name>_sp<V>_lossless_caps_caseops_v1_reserved/  (the record's folder name)
//     fineweb_{train,val}_NNNNNN.bin, stats.json           as above, shards of 10^7 tokens
//     fineweb_val_bytes_NNNNNN.bin                         the val byte sidecar
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "common/error.h"
#include "common/format.h"
#include "common/progress.h"
#include "data/corpus.h"
#include "data/tokenizer.h"

namespace pgolf {
namespace {

struct DataOptions {
  std::vector<std::string> inputs;
  std::string out_dir;
  std::string tokenizer;  // empty: train one
  bool train_tokenizer = false;
  bool default_corpus = false;
  int64_t vocab_size = 1024;
  double val_fraction = 0.1;
  int64_t val_docs = -1;
  int64_t max_sentence_length = 4192;
  std::string name = "fineweb10B";  // matches the default DATA_PATH .../fineweb10B_sp1024
  bool caseops = false;
  bool val_first = false;
  bool quiet = false;
};

std::vector<std::string> gather_documents(const DataOptions& o) {
  PGOLF_CHECK(!o.inputs.empty() || o.default_corpus,
              "pgolf data: give --input PATH... or --default-corpus");
  std::vector<std::string> documents;
  if (o.default_corpus) {
    documents = default_corpus();
    fmt::print("default corpus {}: {} documents\n", kDefaultCorpusDir,
               with_commas(static_cast<int64_t>(documents.size())));
  }
  for (const auto& input : o.inputs) {
    std::vector<std::string> docs = read_documents(std::filesystem::path(input));
    fmt::print("{}: {} documents\n", input, with_commas(static_cast<int64_t>(docs.size())));
    for (auto& doc : docs) documents.push_back(std::move(doc));
  }
  return documents;
}

// Trains on the train split only, so the val text stays unseen.
std::filesystem::path train_new_tokenizer(const DataOptions& o,
                                          std::span<const std::string> train_docs) {
  const std::filesystem::path model = std::filesystem::path(o.out_dir) / "tokenizers" /
                                      fmt::format("{}_{}_bpe.model", o.name, o.vocab_size);
  fmt::print("training a {}-piece BPE tokenizer on {} documents...\n", o.vocab_size,
             with_commas(static_cast<int64_t>(train_docs.size())));
  const auto start = std::chrono::steady_clock::now();
  const TokenizerTrainingReport report =
      train_tokenizer(train_docs, model, {o.vocab_size, o.max_sentence_length, o.quiet});
  const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
  fmt::print("trained the tokenizer in {:.1f} s: {}\n", took.count(), model.string());
  if (report.skipped_long > 0) {
    fmt::print(
        "note: SentencePiece skipped {} of {} documents longer than {} bytes (its "
        "max_sentence_length, kept as in the official exporter; see --max-sentence-length)\n",
        with_commas(report.skipped_long), with_commas(report.sentences), o.max_sentence_length);
  }
  return model;
}

Tokenizer load_checked(const std::filesystem::path& model, const DataOptions& o, bool trained) {
  Tokenizer tokenizer = Tokenizer::load(model);
  PGOLF_CHECK(!trained || tokenizer.vocab_size() == o.vocab_size,
              "the trained tokenizer {} has only {} pieces: the text is too small for "
              "--vocab-size {}; give more text or a smaller --vocab-size",
              model.string(), tokenizer.vocab_size(), o.vocab_size);
  check_vocab(tokenizer, o.vocab_size);
  return tokenizer;
}

void print_split(const char* split, const SplitStats& s) {
  fmt::print("  {:5}: {} docs, {} tokens, {} UTF-8 bytes, {} eval bytes, {} shard(s){}\n", split,
             with_commas(s.docs), with_commas(s.tokens), with_commas(s.utf8_bytes),
             with_commas(s.eval_bytes), s.files.size(),
             s.byte_files.empty() ? "" : fmt::format(" + {} byte sidecar(s)", s.byte_files.size()));
}

int run_data(const DataOptions& o) {
  PGOLF_CHECK(!o.out_dir.empty(), "pgolf data: give --out DIR");
  PGOLF_CHECK(
      !o.caseops || !o.tokenizer.empty(),
      "pgolf data --caseops needs --tokenizer MODEL, a SentencePiece model that reserves "
      "the CaseOps operators (the record's "
      "fineweb_8192_bpe_lossless_caps_caseops_v1_reserved.model); pgolf does not train one");
  const std::vector<std::string> documents = gather_documents(o);
  DatasetOptions dataset;
  dataset.val_fraction = o.val_fraction;
  dataset.val_docs = o.val_docs;
  dataset.val_first = o.val_first;
  dataset.shard_tokens = o.caseops ? kCaseOpsShardTokens : kMaxShardTokens;
  dataset.caseops = o.caseops;
  dataset.quiet = o.quiet;
  const int64_t num_val = val_doc_count(static_cast<int64_t>(documents.size()), dataset);
  const size_t num_train = documents.size() - static_cast<size_t>(num_val);
  const std::span<const std::string> train_docs =
      o.val_first ? std::span(documents).last(num_train) : std::span(documents).first(num_train);

  const bool trained = o.tokenizer.empty();
  const std::filesystem::path model =
      trained ? train_new_tokenizer(o, train_docs) : std::filesystem::path(o.tokenizer);
  const Tokenizer tokenizer = load_checked(model, o, trained);

  const std::filesystem::path dataset_dir =
      std::filesystem::path(o.out_dir) / "datasets" /
      fmt::format("{}_sp{}{}", o.name, o.vocab_size,
                  o.caseops ? "_lossless_caps_caseops_v1_reserved" : "");
  const DatasetStats stats = write_dataset(documents, tokenizer, dataset_dir, dataset);
  fmt::print("tokenizer: {}\n", model.string());
  fmt::print("shards:    {}/fineweb_{{train,val}}_*.bin\n", dataset_dir.string());
  if (o.caseops) fmt::print("sidecar:   {}/fineweb_val_bytes_*.bin\n", dataset_dir.string());
  print_split("train", stats.train);
  print_split("val", stats.val);
  fmt::print("stats:     {}\n", (dataset_dir / "stats.json").string());
  return 0;
}

}  // namespace

Command add_data_command(CLI::App& app) {
  auto o = std::make_shared<DataOptions>();
  CLI::Option* vocab_size = nullptr;
  CLI::App* sub = app.add_subcommand(
      "data", "Build a dataset: train a SentencePiece tokenizer and write challenge shards");
  sub->add_option("--input", o->inputs,
                  ".jsonl ({\"text\": ...} per line), text files (one document each) or folders");
  // Not ->required(): `pgolf data fetch` (a subcommand) has no --out of its own.
  sub->add_option("--out", o->out_dir, "output folder (tokenizers/ and datasets/ go inside)");
  auto* tokenizer = sub->add_option("--tokenizer", o->tokenizer,
                                    "use this SentencePiece .model instead of training one");
  auto* train = sub->add_flag("--train-tokenizer", o->train_tokenizer,
                              "train a tokenizer on the train split (the default)");
  tokenizer->excludes(train);
  vocab_size = sub->add_option("--vocab-size", o->vocab_size,
                               "tokenizer vocabulary size (1024; 8192 with --caseops)")
                   ->check(CLI::Range(int64_t{1}, int64_t{65536}));
  sub->add_option("--val-fraction", o->val_fraction,
                  "fraction of the documents, taken from the end, that form the val split")
      ->check(CLI::Range(0.0, 1.0));
  sub->add_option("--val-docs", o->val_docs,
                  "exact number of val documents (overrides the fraction)");
  sub->add_flag("--val-first", o->val_first,
                "take the val documents from the start of the input, not the end (the order of "
                "the official exporter and of the record's prepare_caseops_data.py)");
  sub->add_flag("--caseops", o->caseops,
                "the record's CaseOps data: case transform (lossless_caps_caseops_v1) before "
                "tokenizing with --tokenizer, val byte sidecar, shards of 10^7 tokens");
  sub->add_option("--max-sentence-length", o->max_sentence_length,
                  "SentencePiece skips longer documents during tokenizer training")
      ->check(CLI::PositiveNumber);
  sub->add_option("--name", o->name, "dataset name: the shards go to datasets/<name>_sp<V>");
  sub->add_flag("--default-corpus", o->default_corpus,
                "add the Python 3.11 documentation (Debian package python3.11-doc) as text");
  sub->add_flag("--quiet", o->quiet, "plain progress lines instead of a live line");
  return {sub, [o, vocab_size] {
            if (o->caseops && vocab_size->count() == 0) o->vocab_size = 8192;
            return run_data(*o);
          }};
}

}  // namespace pgolf
