// CaseOps: the case transform and its inverse (known outputs of the record's
// lossless_caps.py, adversarial and random round trips, every DEV document),
// the original-byte counts, the validation byte sidecar's loader, and
// `pgolf data --caseops` reproducing the record's shards and sidecar
// (../shared/data/caseops) byte for byte.
#include <gtest/gtest.h>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <numeric>
#include <random>

#include "cli/commands.h"
#include "common/error.h"
#include "common/fs.h"
#include "data/caseops.h"
#include "data/corpus.h"
#include "data/shard.h"
#include "data/tokenizer.h"
#include "tests/data/data_command.h"
#include "tests/test_util.h"

namespace pgolf {
namespace {

using testing::ScratchDir;
using testing::shared_dir;

// The operators' UTF-8 forms.
const std::string kTitle = "\uE001", kAllCaps = "\uE002", kCapNext = "\uE003", kEsc = "\uE004";

std::filesystem::path caseops_dir() { return shared_dir() / "data/caseops"; }
std::filesystem::path caseops_tokenizer() {
  return caseops_dir() / "tokenizers/fineweb_8192_bpe_lossless_caps_caseops_v1_reserved.model";
}

const std::vector<std::string>& dev_documents() {
  static const std::vector<std::string> docs =
      read_jsonl_documents(shared_dir() / "data/text/dev.jsonl");
  return docs;
}

// ---- The transform -------------------------------------------------------------

// Outputs of the reference's encode_lossless_caps_v2 on the same inputs.
TEST(CaseopsTransform, MatchesTheReferenceOnKnownStrings) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", ""},
      {"The NASA Launch", kTitle + "the " + kAllCaps + "nasa " + kTitle + "launch"},
      {"McDonald's iPhone", kTitle + "mc" + kCapNext + "donald's i" + kCapNext + "phone"},
      {"A", kTitle + "a"},
      {"ABc", kTitle + "a" + kCapNext + "bc"},
      {"aBC", "a" + kCapNext + "b" + kCapNext + "c"},
      {"I'm OK", kTitle + "i'm " + kAllCaps + "ok"},
      {"hTTP://Example.COM/Path", "h" + kCapNext + "t" + kCapNext + "t" + kCapNext + "p://" +
                                      kTitle + "example." + kAllCaps + "com/" + kTitle + "path"},
      // Literal operators are escaped; other private-use characters are not.
      {"x\uE001y\uE004", "x" + kEsc + kTitle + "y" + kEsc + kEsc},
      {"\uE000 \uE005", "\uE000 \uE005"},
      // Only ASCII letters change: É, ß, ǅ (a titlecase letter) and fullwidth Ａ stay.
      {"ÉCOLE Straße ǅ ＡＢＣ", "É" + kAllCaps + "cole " + kTitle + "straße ǅ ＡＢＣ"},
      {"Привет World 世界 ÀB", "Привет " + kTitle + "world 世界 À" + kTitle + "b"},
      {"HELLO WORLD, 𝔸 42", kAllCaps + "hello " + kAllCaps + "world, 𝔸 42"},
  };
  for (const auto& [text, expected] : cases) {
    EXPECT_EQ(caseops_encode(text), expected) << text;
    EXPECT_EQ(caseops_decode(expected), text) << text;
  }
}

TEST(CaseopsTransform, RoundTripsAdversarialStrings) {
  const std::vector<std::string> cases = {"",
                                          "A",
                                          "a",
                                          "AB",
                                          "Ab",
                                          "aB",
                                          "ABCDEFGHIJKLMNOPQRSTUVWXYZ",
                                          "x" + kTitle + kAllCaps,
                                          kEsc + kEsc + kEsc,
                                          kCapNext + "A",
                                          "A" + kTitle + "B",
                                          kTitle + kTitle,
                                          "ALL CAPS RUN, THEN MORE: ABC-DEF_GHI 123ABC",
                                          "mIxEd CaSe wOrDs\n\tand\r\nLINES",
                                          "Ελληνικά ΚΕΦΑΛΑΙΑ Кириллица ÀÉÎÕÜ 日本語 العربية "
                                          "🙂 "
                                          "A🙂B",
                                          std::string("nul\0byte", 8)};
  for (const auto& text : cases) EXPECT_EQ(caseops_decode(caseops_encode(text)), text) << text;

  // Random strings over letters, separators, operators and multi-byte characters.
  const std::vector<std::string> alphabet = {
      "a", "b", "z", "A", "B", "Z",      " ",    ".",      "'",      "0",  "é",
      "É", "ß", "€", "𝔸", "ǅ", "\uE000", kTitle, kAllCaps, kCapNext, kEsc, "\uE005"};
  std::mt19937 rng(7);
  for (int n = 0; n < 20000; ++n) {
    std::string text;
    for (int k = static_cast<int>(rng() % 16); k > 0; --k)
      text += alphabet[rng() % alphabet.size()];
    const std::string encoded = caseops_encode(text);
    ASSERT_EQ(caseops_decode(encoded), text);
    // The transformed text has no uppercase ASCII left, and its counted bytes are the original's.
    ASSERT_EQ(
        std::count_if(encoded.begin(), encoded.end(), [](char c) { return c >= 'A' && c <= 'Z'; }),
        0);
    CaseOpsByteCounter counter;
    ASSERT_EQ(counter.count(encoded), static_cast<int64_t>(text.size()));
    counter.finish();
  }
}

TEST(CaseopsTransform, RejectsInvalidUtf8) {
  for (const std::string bad :
       {"\xC3", "ab\xFF", "\xC0\xAF", "\xED\xA0\x80", "\xF4\x90\x80\x80", "ok\x80"}) {
    EXPECT_PGOLF_ERROR(caseops_encode(bad), "CaseOps encode: invalid UTF-8 at byte");
    EXPECT_PGOLF_ERROR(caseops_decode(bad), "CaseOps decode: invalid UTF-8 at byte");
  }
  EXPECT_PGOLF_ERROR(caseops_encode("Hello \xE2\x82 world"), "invalid UTF-8 at byte 6 (0xE2)");
  CaseOpsByteCounter counter;
  EXPECT_PGOLF_ERROR(counter.count("a\xFF"), "piece 0 is not UTF-8 (byte 1)");
}

TEST(CaseopsTransform, DecodeRejectsWhatNoEncodingProduces) {
  EXPECT_PGOLF_ERROR(caseops_decode(kTitle), "the text ends with a case operator");
  EXPECT_PGOLF_ERROR(caseops_decode("a" + kCapNext), "the text ends with a case operator");
  EXPECT_PGOLF_ERROR(caseops_decode(kEsc), "the text ends with ESC");
  EXPECT_PGOLF_ERROR(caseops_decode(kTitle + " a"), "not followed by a letter (byte 3)");
  EXPECT_PGOLF_ERROR(caseops_decode("a" + kAllCaps + "b"), "inside a word");
  EXPECT_PGOLF_ERROR(caseops_decode(kCapNext + kCapNext + "a"), "two CAPNEXT in a row");
  EXPECT_PGOLF_ERROR(caseops_decode(kCapNext + kTitle + "a"), "after another case operator");
  EXPECT_PGOLF_ERROR(caseops_decode(kTitle + kEsc + kTitle), "cannot take a pending TITLE");
  // What the reference's decoder accepts, it decodes the same way.
  EXPECT_EQ(caseops_decode(kCapNext + "a"), "A");
  EXPECT_EQ(caseops_decode("a" + kCapNext + "b"), "aB");
  EXPECT_EQ(caseops_decode(kEsc + "a"), "a");
  EXPECT_EQ(caseops_decode(kAllCaps + "a1b"), "A1b");
}

TEST(CaseopsTransform, RoundTripsEveryDevDocument) {
  PGOLF_REQUIRE_SHARED();
  int64_t changed = 0;
  for (const auto& doc : dev_documents()) {
    const std::string encoded = caseops_encode(doc);
    ASSERT_EQ(caseops_decode(encoded), doc);
    changed += encoded != doc ? 1 : 0;
  }
  EXPECT_EQ(dev_documents().size(), 2998u);
  EXPECT_GT(changed, 2900);  // nearly every document has a capital letter
}

// ---- Original bytes per piece ------------------------------------------------

// The reference's surface_piece_original_byte_counts on the same pieces.
TEST(CaseopsByteCounter, CountsTheOriginalBytesOfEachPiece) {
  CaseOpsByteCounter counter;
  std::vector<int64_t> counts;
  for (const std::string& piece :
       {kTitle, std::string("the"), " " + kAllCaps + "na", std::string("sa"), kEsc, kTitle,
        std::string("é"), std::string()}) {
    counts.push_back(counter.count(piece));
  }
  counter.finish();
  EXPECT_EQ(counts, (std::vector<int64_t>{0, 3, 3, 2, 0, 3, 2, 0}));

  // State carries across pieces: a dangling operator is only wrong at the end.
  CaseOpsByteCounter dangling;
  EXPECT_EQ(dangling.count("a " + kTitle), 2);
  EXPECT_PGOLF_ERROR(dangling.finish(), "ends with a case operator (after 1 pieces)");
  CaseOpsByteCounter misplaced;
  misplaced.count("ab");
  EXPECT_PGOLF_ERROR(misplaced.count(kTitle), "inside a word");
}

// ---- The byte sidecar's loader -------------------------------------------------

std::vector<uint16_t> iota_tokens(size_t n) {
  std::vector<uint16_t> v(n);
  std::iota(v.begin(), v.end(), uint16_t{1});
  return v;
}

TEST(CaseopsSidecar, NamesAndLoading) {
  EXPECT_EQ(byte_sidecar_of("/d/fineweb_val_000003.bin"), "/d/fineweb_val_bytes_000003.bin");
  EXPECT_TRUE(is_byte_sidecar("/d/fineweb_val_bytes_000003.bin"));
  EXPECT_FALSE(is_byte_sidecar("/d/fineweb_val_000003.bin"));

  ScratchDir dir;
  const std::string glob = (dir / "fineweb_val_*.bin").string();
  write_shard(dir / "fineweb_val_000000.bin", iota_tokens(5));
  write_shard(dir / "fineweb_val_000001.bin", iota_tokens(4));
  EXPECT_FALSE(load_validation_byte_sidecar(glob, 9).defined());  // no sidecar: the tables

  write_shard(dir / "fineweb_val_bytes_000000.bin", std::vector<uint16_t>{0, 1, 2, 3, 4});
  EXPECT_PGOLF_ERROR(load_validation_byte_sidecar(glob, 9),
                     "fineweb_val_000001.bin has no byte sidecar fineweb_val_bytes_000001.bin");
  write_shard(dir / "fineweb_val_bytes_000001.bin", std::vector<uint16_t>{0, 65535, 6, 7});
  const torch::Tensor bytes = load_validation_byte_sidecar(glob, 8);
  EXPECT_EQ(bytes.scalar_type(), torch::kInt32);
  EXPECT_TRUE(bytes.equal(torch::tensor({0, 1, 2, 3, 4, 0, 65535, 6}, torch::kInt32)));
  EXPECT_PGOLF_ERROR(load_validation_byte_sidecar(glob, 10), "hold 9 entries, fewer than the 10");

  // The glob matches the sidecars too: the token stream leaves them out.
  EXPECT_EQ(load_validation_tokens(glob, 4, 0).numel(), 9);

  // A sidecar of another length, or not a shard file, is an error.
  write_shard(dir / "fineweb_val_bytes_000001.bin", std::vector<uint16_t>{0, 1, 2});
  EXPECT_PGOLF_ERROR(load_validation_byte_sidecar(glob, 8),
                     "holds 3 entries but its shard fineweb_val_000001.bin holds 4 tokens");
  write_file_atomic(dir / "fineweb_val_bytes_000001.bin", std::string(1032, '\0'));
  EXPECT_PGOLF_ERROR(load_validation_byte_sidecar(glob, 8),
                     "fineweb_val_bytes_000001.bin: bad magic");
}

// ---- Building the record's data ------------------------------------------------

// `pgolf data --caseops` on all DEV documents (300 val), built once per run.
struct BuiltDev {
  ScratchDir dir;
  DatasetStats stats;

  BuiltDev() {
    DatasetOptions options;
    options.val_docs = 300;
    options.shard_tokens = kCaseOpsShardTokens;
    options.caseops = true;
    options.quiet = true;
    stats =
        write_dataset(dev_documents(), Tokenizer::load(caseops_tokenizer()), dir / "ds", options);
  }
};

const BuiltDev& built_dev() {
  static const BuiltDev built;
  return built;
}

TEST(CaseopsDataset, ReproducesTheRecordShardsAndSidecar) {
  PGOLF_REQUIRE_SHARED();
  const BuiltDev& built = built_dev();
  for (const char* name :
       {"fineweb_train_000000.bin", "fineweb_val_000000.bin", "fineweb_val_bytes_000000.bin"}) {
    const std::string ours = read_file(built.dir / "ds" / name);
    EXPECT_TRUE(ours == read_file(caseops_dir() / "shards" / name)) << name << " differs";
  }
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(built.dir / "ds")) {
    names.push_back(entry.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"fineweb_train_000000.bin", "fineweb_val_000000.bin",
                                             "fineweb_val_bytes_000000.bin", "stats.json"}));

  const DatasetStats& s = built.stats;
  EXPECT_EQ(s.vocab_size, 8192);
  EXPECT_EQ(s.train.docs, 2698);
  EXPECT_EQ(s.train.tokens, 4'932'615);
  EXPECT_EQ(s.val.docs, 300);
  EXPECT_EQ(s.val.tokens, 575'781);
  ASSERT_EQ(s.val.byte_files.size(), 1u);
  EXPECT_EQ(s.val.byte_files[0].tokens, 575'781);
  EXPECT_TRUE(s.train.byte_files.empty());
  // The sidecar sums to the documents' UTF-8 size. Bytes that SentencePiece's
  // normalizer drops at a document's start are in no token's surface: two
  // train documents start with them (U+200E; U+FEFF and a space), 7 bytes.
  EXPECT_EQ(s.val.utf8_bytes, 1'769'735);
  EXPECT_EQ(s.val.eval_bytes, s.val.utf8_bytes);
  EXPECT_EQ(s.train.utf8_bytes - s.train.eval_bytes, 7);
  const auto json = nlohmann::json::parse(read_file(built.dir / "ds/stats.json"));
  EXPECT_EQ(json["text_transform"], "lossless_caps_caseops_v1");
  EXPECT_EQ(json["splits"]["val"]["byte_sidecar_files"][0]["name"], "fineweb_val_bytes_000000.bin");
}

TEST(CaseopsDataset, SidecarCountsOriginalBytesPerToken) {
  PGOLF_REQUIRE_SHARED();
  const BuiltDev& built = built_dev();
  const auto tokens = read_shard(built.dir / "ds/fineweb_val_000000.bin", 8192);
  const auto bytes = read_shard(built.dir / "ds/fineweb_val_bytes_000000.bin", 0);
  ASSERT_EQ(tokens.size(), bytes.size());
  // Per document: BOS and the operators (ids 4..7; DEV has no literal operator
  // to escape) stand for no text, and the entries sum to the document's size.
  const size_t first_val = dev_documents().size() - 300;
  int64_t doc = -1, doc_bytes = 0;
  const auto check_doc = [&] {
    if (doc >= 0) {
      EXPECT_EQ(doc_bytes, static_cast<int64_t>(dev_documents()[first_val + doc].size())) << doc;
    }
  };
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (tokens[i] == 1) {
      check_doc();
      ++doc;
      doc_bytes = 0;
    }
    if (tokens[i] == 1 || (tokens[i] >= 4 && tokens[i] <= 7)) {
      ASSERT_EQ(bytes[i], 0) << i;
    }
    doc_bytes += bytes[i];
  }
  check_doc();
  EXPECT_EQ(doc, 299);
}

TEST(CaseopsDataset, ValFirstTakesTheStartOfTheInput) {
  PGOLF_REQUIRE_SHARED();
  const Tokenizer tok = Tokenizer::load(caseops_tokenizer());
  const std::vector<std::string> docs(dev_documents().begin(), dev_documents().begin() + 12);
  // The script's order: validation documents first.
  std::vector<std::string> val_first(docs.end() - 3, docs.end());
  val_first.insert(val_first.end(), docs.begin(), docs.end() - 3);
  ScratchDir dir;
  DatasetOptions options;
  options.val_docs = 3;
  options.caseops = true;
  options.quiet = true;
  write_dataset(docs, tok, dir / "last", options);
  options.val_first = true;
  write_dataset(val_first, tok, dir / "first", options);
  for (const char* name :
       {"fineweb_train_000000.bin", "fineweb_val_000000.bin", "fineweb_val_bytes_000000.bin"}) {
    EXPECT_EQ(read_file(dir / "first" / name), read_file(dir / "last" / name)) << name;
  }
}

TEST(CaseopsDataset, CutsTheSidecarWithItsShards) {
  PGOLF_REQUIRE_SHARED();
  const Tokenizer tok = Tokenizer::load(caseops_tokenizer());
  const std::vector<std::string> docs(dev_documents().begin(), dev_documents().begin() + 8);
  ScratchDir dir;
  DatasetOptions options;
  options.val_docs = 6;
  options.shard_tokens = 1000;
  options.caseops = true;
  options.quiet = true;
  const DatasetStats stats = write_dataset(docs, tok, dir / "ds", options);
  ASSERT_GT(stats.val.files.size(), 1u);
  ASSERT_EQ(stats.val.byte_files.size(), stats.val.files.size());
  for (size_t i = 0; i < stats.val.files.size(); ++i) {
    EXPECT_EQ(stats.val.byte_files[i].tokens, stats.val.files[i].tokens);
  }
  const std::string glob = (dir / "ds/fineweb_val_*.bin").string();
  const torch::Tensor sidecar = load_validation_byte_sidecar(glob, stats.val.tokens);
  EXPECT_EQ(sidecar.sum().item<int64_t>(), stats.val.utf8_bytes);
}

TEST(CaseopsDataset, TokenizerMustMatchTheTransform) {
  PGOLF_REQUIRE_SHARED();
  ScratchDir dir;
  const std::vector<std::string> docs(dev_documents().begin(), dev_documents().begin() + 3);
  DatasetOptions options;
  options.quiet = true;
  EXPECT_TRUE(is_caseops_tokenizer(Tokenizer::load(caseops_tokenizer())));
  EXPECT_FALSE(is_caseops_tokenizer(Tokenizer::load(testing::official_tokenizer())));
  EXPECT_PGOLF_ERROR(write_dataset(docs, Tokenizer::load(caseops_tokenizer()), dir / "a", options),
                     "must be built with the CaseOps transform");
  options.caseops = true;
  EXPECT_PGOLF_ERROR(
      write_dataset(docs, Tokenizer::load(testing::official_tokenizer()), dir / "b", options),
      "not a CaseOps tokenizer");
}

// ---- pgolf data --caseops --------------------------------------------------------

using testing::run_data_command;

TEST(CaseopsCli, BuildsTheRecordLayout) {
  PGOLF_REQUIRE_SHARED();
  ScratchDir dir;
  std::string jsonl;
  for (size_t i = 0; i < 10; ++i)
    jsonl += nlohmann::json{{"text", dev_documents()[i]}}.dump() + "\n";
  write_file_atomic(dir / "docs.jsonl", jsonl);
  const std::string input = (dir / "docs.jsonl").string(), out = (dir / "out").string();
  EXPECT_EQ(run_data_command({"--input", input, "--out", out, "--caseops", "--tokenizer",
                              caseops_tokenizer().string(), "--val-docs", "2", "--quiet"}),
            0);
  const auto ds = dir / "out/datasets/fineweb10B_sp8192_lossless_caps_caseops_v1_reserved";
  const auto stats = nlohmann::json::parse(read_file(ds / "stats.json"));
  EXPECT_EQ(stats["vocab_size"], 8192);
  EXPECT_EQ(stats["shard_tokens"], kCaseOpsShardTokens);
  EXPECT_EQ(stats["splits"]["val"]["docs"], 2);
  EXPECT_EQ(stats["splits"]["val"]["eval_bytes"], stats["splits"]["val"]["utf8_bytes"]);
  EXPECT_TRUE(std::filesystem::exists(ds / "fineweb_val_bytes_000000.bin"));

  EXPECT_PGOLF_ERROR(run_data_command({"--input", input, "--out", out, "--caseops"}),
                     "--caseops needs --tokenizer MODEL");
  EXPECT_PGOLF_ERROR(run_data_command({"--input", input, "--out", out, "--tokenizer",
                                       caseops_tokenizer().string(), "--vocab-size", "8192"}),
                     "pgolf data --caseops");
}

}  // namespace
}  // namespace pgolf
