// Building datasets: reading documents, tokenizer training with the official
// settings, shard writing (BOS per document, no EOS, last docs → val), the
// `pgolf data` command, and the Progress reporter it uses.
#include <gtest/gtest.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <numeric>

#include "cli/commands.h"
#include "common/error.h"
#include "common/format.h"
#include "common/fs.h"
#include "common/progress.h"
#include "data/corpus.h"
#include "data/shard.h"
#include "data/tokenizer.h"
#include "tests/data/data_command.h"
#include "tests/test_util.h"

namespace pgolf {
namespace {

using testing::ScratchDir;
using testing::shared_dir;

using testing::official_tokenizer;

// The shared DEV documents, parsed once.
const std::vector<std::string>& dev_documents() {
  static const std::vector<std::string> docs =
      read_jsonl_documents(shared_dir() / "data/text/dev.jsonl");
  return docs;
}

std::vector<std::string> first_docs(size_t n) {
  return {dev_documents().begin(), dev_documents().begin() + static_cast<std::ptrdiff_t>(n)};
}

std::vector<uint16_t> read_split(const std::filesystem::path& dir, const std::string& split) {
  std::vector<uint16_t> all;
  for (const auto& f : shard_files((dir / ("fineweb_" + split + "_*.bin")).string(), split)) {
    const auto tokens = read_shard(f, 0);
    all.insert(all.end(), tokens.begin(), tokens.end());
  }
  return all;
}

// ---- Reading -----------------------------------------------------------------

TEST(CorpusRead, JsonlTextsAndBlankLines) {
  ScratchDir dir;
  write_file_atomic(dir / "a.jsonl",
                    "{\"text\": \"one\"}\n\n{\"text\": \"t\\u00e9\\n2\", \"id\": 3}\n");
  EXPECT_EQ(read_jsonl_documents(dir / "a.jsonl"),
            (std::vector<std::string>{"one", "t\xC3\xA9\n2"}));
}

TEST(CorpusRead, MalformedJsonlNamesFileAndLine) {
  ScratchDir dir;
  write_file_atomic(dir / "bad.jsonl", "{\"text\": \"ok\"}\n{\"text\": \"unterminated\n");
  EXPECT_PGOLF_ERROR(read_jsonl_documents(dir / "bad.jsonl"), "bad.jsonl:2: malformed JSON line");
  write_file_atomic(dir / "notext.jsonl", "{\"text\": \"ok\"}\n{\"body\": \"x\"}\n");
  EXPECT_PGOLF_ERROR(read_jsonl_documents(dir / "notext.jsonl"),
                     "notext.jsonl:2: expected an object with a \"text\" string");
  write_file_atomic(dir / "num.jsonl", "{\"text\": 5}\n");
  EXPECT_PGOLF_ERROR(read_jsonl_documents(dir / "num.jsonl"), "num.jsonl:1: expected an object");
}

TEST(CorpusRead, FilesAndFolders) {
  ScratchDir dir;
  std::filesystem::create_directories(dir / "tree/sub");
  write_file_atomic(dir / "tree/b.txt", "bee");
  write_file_atomic(dir / "tree/a.rst", "ay");
  write_file_atomic(dir / "tree/sub/c.jsonl", "{\"text\": \"sea\"}\n{\"text\": \"see\"}\n");
  write_file_atomic(dir / "tree/blob.bin", std::string("\x00\x01\xFF", 3));  // skipped
  EXPECT_EQ(read_documents(dir / "tree"), (std::vector<std::string>{"ay", "bee", "sea", "see"}));
  EXPECT_EQ(read_documents(dir / "tree/b.txt"), (std::vector<std::string>{"bee"}));
  EXPECT_EQ(
      read_documents(std::vector<std::filesystem::path>{dir / "tree/b.txt", dir / "tree/a.rst"}),
      (std::vector<std::string>{"bee", "ay"}));
  EXPECT_PGOLF_ERROR(read_documents(dir / "tree/blob.bin"), "blob.bin: not a UTF-8 text file");
  EXPECT_PGOLF_ERROR(read_documents(dir / "nothing"), "nothing: no such file or folder");
}

TEST(CorpusRead, TrainingTextLikeTheExporter) {
  // NUL → space, then Python's str.strip(): Unicode whitespace at both ends only.
  EXPECT_EQ(training_text(std::string("\0 a\0b \t\n", 8)), "a b");
  EXPECT_EQ(training_text("\xC2\xA0\xE3\x80\x80word\xC2\xA0word\xE2\x80\xA8"), "word\xC2\xA0word");
  EXPECT_EQ(training_text(" \n "), "");
  EXPECT_EQ(training_text("caf\xC3\xA9"), "caf\xC3\xA9");
}

TEST(CorpusRead, DefaultCorpusErrors) {
  ScratchDir dir;
  EXPECT_PGOLF_ERROR(default_corpus(dir / "absent"), "apt-get install python3.11-doc");
  write_file_atomic(dir / "x.txt", "small");
  EXPECT_PGOLF_ERROR(default_corpus(dir.path()), "holds only 5 bytes in 1 .txt files");
}

TEST(CorpusRead, DefaultCorpus) {
  if (!std::filesystem::is_directory(kDefaultCorpusDir)) GTEST_SKIP() << "python3.11-doc missing";
  const auto docs = default_corpus();
  EXPECT_GE(docs.size(), 400u);
  const int64_t bytes =
      std::accumulate(docs.begin(), docs.end(), int64_t{0},
                      [](int64_t s, const std::string& d) { return s + d.size(); });
  EXPECT_GT(bytes, 5'000'000);
}

TEST(CorpusSplit, ValDocCount) {
  DatasetOptions o;
  EXPECT_EQ(val_doc_count(2998, o), 300);  // as shared/data: the last 10%
  EXPECT_EQ(val_doc_count(10, o), 1);
  EXPECT_EQ(val_doc_count(3, o), 1);  // at least one each way
  o.val_fraction = 0.9;
  EXPECT_EQ(val_doc_count(3, o), 2);
  o.val_docs = 7;
  EXPECT_EQ(val_doc_count(100, o), 7);
  EXPECT_PGOLF_ERROR(val_doc_count(7, o), "val_docs=7 must be between 1 and 6");
  EXPECT_PGOLF_ERROR(val_doc_count(1, o), "need at least 2 documents");
  o.val_docs = -1;
  o.val_fraction = 1.5;
  EXPECT_PGOLF_ERROR(val_doc_count(10, o), "val_fraction=1.5 must be between 0 and 1");
}

// ---- Tokenizer training ------------------------------------------------------

TEST(CorpusTokenizer, TrainsSmallOfficialStyleModel) {
  PGOLF_REQUIRE_SHARED();
  ScratchDir dir;
  std::vector<std::string> docs;
  size_t bytes = 0;
  for (const auto& d : dev_documents()) {
    if (bytes > 300'000) break;
    docs.push_back(d);
    bytes += d.size();
  }
  const auto model = dir / "tok/fineweb_400_bpe.model";
  const TokenizerTrainingReport report =
      train_tokenizer(docs, model, {.vocab_size = 400, .quiet = true});
  EXPECT_EQ(report.sentences, static_cast<int64_t>(docs.size()));
  EXPECT_GT(report.skipped_long, 0);  // SentencePiece's 4192-byte limit, as in the exporter
  EXPECT_LT(report.skipped_long, report.sentences);
  EXPECT_TRUE(std::filesystem::exists(dir / "tok/fineweb_400_bpe.vocab"));
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir / "tok"), {}), 2);  // no temp

  const Tokenizer tok = Tokenizer::load(model);
  EXPECT_EQ(tok.vocab_size(), 400);
  EXPECT_EQ(tok.bos_id(), 1);
  EXPECT_EQ(tok.eos_id(), 2);
  EXPECT_EQ(tok.piece(0), "<pad>");
  EXPECT_TRUE(tok.is_unknown(3));
  for (int id = 4; id < 260; ++id) ASSERT_TRUE(tok.is_byte(id)) << id;  // byte fallback
  const std::string text = "Hello, world! 2024 costs 12 \xE2\x82\xAC \xE6\x97\xA5\xE6\x9C\xAC";
  const std::vector<int> ids = tok.encode(text);
  EXPECT_EQ(tok.decode(ids), text);
  EXPECT_FALSE(tok.piece(ids[0]).starts_with("\xE2\x96\x81"));  // add_dummy_prefix=false
  EXPECT_EQ(tok.encode("2024").size(), 4u);                     // split_digits=true
}

TEST(CorpusTokenizer, Errors) {
  ScratchDir dir;
  const std::vector<std::string> docs = {"short text"};
  EXPECT_PGOLF_ERROR(train_tokenizer(docs, dir / "x.bin", {}), "must end in .model");
  const std::vector<std::string> long_docs = {std::string(5000, 'a'), "  "};
  EXPECT_PGOLF_ERROR(train_tokenizer(long_docs, dir / "x.model", {}),
                     "none of the 1 non-empty documents is at most 4192 bytes");
}

// ---- Shards ------------------------------------------------------------------

TEST(CorpusDataset, MatchesSharedShardsConvention) {
  PGOLF_REQUIRE_SHARED();
  ScratchDir dir;
  const Tokenizer tok = Tokenizer::load(official_tokenizer());
  const std::vector<std::string> docs = first_docs(40);
  DatasetOptions options;
  options.val_docs = 4;
  options.quiet = true;
  const DatasetStats stats = write_dataset(docs, tok, dir / "ds", options);

  // The shared train shard starts with the same 36 documents, encoded the same way.
  const auto train = read_split(dir / "ds", "train");
  const auto shared = read_shard(shared_dir() / "data/shards/fineweb_train_000000.bin", 1024);
  ASSERT_LT(train.size(), shared.size());
  EXPECT_TRUE(std::equal(train.begin(), train.end(), shared.begin()));
  EXPECT_EQ(shared[train.size()], 1);  // the next document's BOS

  // Val: the last 4 documents, each [BOS] + encode(text), no EOS.
  std::vector<uint16_t> expected_val;
  for (size_t i = 36; i < 40; ++i) {
    expected_val.push_back(1);
    for (int id : tok.encode(docs[i])) expected_val.push_back(static_cast<uint16_t>(id));
  }
  EXPECT_EQ(read_split(dir / "ds", "val"), expected_val);
  EXPECT_EQ(std::count(train.begin(), train.end(), uint16_t{1}), 36);
  EXPECT_EQ(std::count(train.begin(), train.end(), uint16_t{2}), 0);

  EXPECT_EQ(stats.train.docs, 36);
  EXPECT_EQ(stats.val.docs, 4);
  EXPECT_EQ(stats.train.tokens, static_cast<int64_t>(train.size()));
  EXPECT_EQ(stats.val.tokens, static_cast<int64_t>(expected_val.size()));
  const ByteLuts luts = build_byte_luts(tok, 1024);
  const torch::Tensor v =
      torch::tensor(std::vector<int64_t>(expected_val.begin(), expected_val.end()));
  EXPECT_EQ(stats.val.eval_bytes,
            target_bytes(luts, v.slice(0, 0, -1), v.slice(0, 1)).sum().item<int64_t>());
  int64_t utf8 = 0;
  for (size_t i = 36; i < 40; ++i) utf8 += static_cast<int64_t>(docs[i].size());
  EXPECT_EQ(stats.val.utf8_bytes, utf8);

  const auto json = nlohmann::json::parse(read_file(dir / "ds/stats.json"));
  EXPECT_EQ(json["splits"]["train"]["docs"], 36);
  EXPECT_EQ(json["splits"]["val"]["tokens"], stats.val.tokens);
  EXPECT_EQ(json["splits"]["val"]["files"][0]["name"], "fineweb_val_000000.bin");
  EXPECT_EQ(json["append_eos"], false);
}

TEST(CorpusDataset, CutsShardsAndRemovesStaleOnes) {
  PGOLF_REQUIRE_SHARED();
  ScratchDir dir;
  std::filesystem::create_directories(dir / "ds");
  write_shard(dir / "ds/fineweb_train_000009.bin", std::vector<uint16_t>{7});
  const Tokenizer tok = Tokenizer::load(official_tokenizer());
  const std::vector<std::string> docs = first_docs(10);
  DatasetOptions options;
  options.shard_tokens = 5000;
  options.quiet = true;
  const DatasetStats stats = write_dataset(docs, tok, dir / "ds", options);
  EXPECT_EQ(stats.val.docs, 1);
  EXPECT_FALSE(std::filesystem::exists(dir / "ds/fineweb_train_000009.bin"));
  ASSERT_GT(stats.train.files.size(), 1u);
  for (size_t i = 0; i < stats.train.files.size(); ++i) {
    EXPECT_EQ(stats.train.files[i].name, fmt::format("fineweb_train_{:06d}.bin", i));
    if (i + 1 < stats.train.files.size()) {
      EXPECT_EQ(stats.train.files[i].tokens, 5000);
    }
  }
  std::vector<uint16_t> expected;
  for (size_t i = 0; i < 9; ++i) {
    expected.push_back(1);
    for (int id : tok.encode(docs[i])) expected.push_back(static_cast<uint16_t>(id));
  }
  EXPECT_EQ(read_split(dir / "ds", "train"), expected);
}

// ---- pgolf data ----------------------------------------------------------------

using testing::run_data_command;

TEST(CorpusCli, GivenTokenizer) {
  PGOLF_REQUIRE_SHARED();
  ScratchDir dir;
  std::string jsonl;
  for (const auto& d : first_docs(20)) jsonl += nlohmann::json{{"text", d}}.dump() + "\n";
  write_file_atomic(dir / "docs.jsonl", jsonl);
  EXPECT_EQ(
      run_data_command({"--input", (dir / "docs.jsonl").string(), "--out", (dir / "out").string(),
                        "--tokenizer", official_tokenizer().string(), "--quiet"}),
      0);
  const auto ds = dir / "out/datasets/fineweb10B_sp1024";
  const auto stats = nlohmann::json::parse(read_file(ds / "stats.json"))["splits"];
  EXPECT_EQ(stats["train"]["docs"], 18);
  EXPECT_EQ(stats["val"]["docs"], 2);
  EXPECT_EQ(read_split(ds, "train").size(), stats["train"]["tokens"].get<size_t>());
  EXPECT_EQ(read_split(ds, "val").size(), stats["val"]["tokens"].get<size_t>());
  EXPECT_PGOLF_ERROR(
      run_data_command({"--input", (dir / "docs.jsonl").string(), "--out", (dir / "out").string(),
                        "--tokenizer", official_tokenizer().string(), "--vocab-size", "512"}),
      "VOCAB_SIZE=512 does not match");
  EXPECT_PGOLF_ERROR(run_data_command({"--out", (dir / "out").string()}),
                     "give --input PATH... or --default-corpus");
}

TEST(CorpusCli, TrainsTokenizer) {
  PGOLF_REQUIRE_SHARED();
  ScratchDir dir;
  std::string jsonl;
  for (const auto& d : first_docs(60)) jsonl += nlohmann::json{{"text", d}}.dump() + "\n";
  write_file_atomic(dir / "docs.jsonl", jsonl);
  EXPECT_EQ(
      run_data_command({"--input", (dir / "docs.jsonl").string(), "--out", (dir / "out").string(),
                        "--vocab-size", "384", "--name", "dev", "--quiet"}),
      0);
  const Tokenizer tok = Tokenizer::load(dir / "out/tokenizers/dev_384_bpe.model");
  EXPECT_EQ(tok.vocab_size(), 384);
  EXPECT_EQ(read_split(dir / "out/datasets/dev_sp384", "val").front(), 1);
}

// ---- Progress ----------------------------------------------------------------

TEST(CorpusProgress, PlainLinesAndSummary) {
  std::FILE* out = std::tmpfile();
  ASSERT_NE(out, nullptr);
  {
    Progress progress("encode", 2000, "docs", {.quiet = true, .interval_s = 0.0, .out = out});
    progress.update(1000, "loss 3.21");
    progress.advance(1000);
    progress.finish("7 shards");
    progress.finish();  // once only
  }
  std::rewind(out);
  std::string text(4096, '\0');
  text.resize(std::fread(text.data(), 1, text.size(), out));
  std::fclose(out);
  EXPECT_NE(text.find("encode: 1,000/2,000 docs (50.0%)"), std::string::npos) << text;
  EXPECT_NE(text.find("loss 3.21"), std::string::npos) << text;
  EXPECT_NE(text.find("encode: 2,000 docs in "), std::string::npos) << text;
  EXPECT_NE(text.find(", 7 shards\n"), std::string::npos) << text;
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 3) << text;
  EXPECT_EQ(text.find('\r'), std::string::npos);
  EXPECT_EQ(with_commas(-1234567), "-1,234,567");
  EXPECT_EQ(format_duration(3725), "1:02:05");
}

}  // namespace
}  // namespace pgolf
