// `pgolf data fetch` against a miniature export in the official layout,
// served on loopback by range_server.py (Range requests, X-Linked-Etag, and
// connections cut half-way): layout, resume within a run and across runs,
// hash mismatches, the offline error, and the manifest-driven plan.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "common/fs.h"
#include "data/shard.h"
#include "tests/test_util.h"
#include "workflow/fetch.h"
#include "workflow/sha256.h"

namespace pgolf {
namespace {

constexpr const char* kRepo = "test/mini";
constexpr const char* kDataset = "datasets/fineweb10B_sp1024";

nlohmann::json mini_manifest() {
  return {
      {"version", "test"},
      {"shard_size", 1000},
      {"tokenizers",
       {{{"name", "sp_bpe_1024"},
         {"kind", "sentencepiece_bpe"},
         {"vocab_size", 1024},
         {"model_path", "tokenizers/fineweb_1024_bpe.model"},
         {"vocab_path", "tokenizers/fineweb_1024_bpe.vocab"}}}},
      {"datasets",
       {{{"name", "fineweb10B_sp1024"},
         {"tokenizer_name", "sp_bpe_1024"},
         {"stats",
          {{"files_val", 1}, {"files_train", 3}, {"tokens_val", 700}, {"tokens_train", 2500}}}}}}};
}

std::vector<uint16_t> tokens(int64_t n, int seed) {
  std::vector<uint16_t> t(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i)
    t[static_cast<size_t>(i)] = static_cast<uint16_t>((i * 7 + seed) % 1024);
  return t;
}

// A miniature of one variant's export: its manifest (as the hub's lists
// it), its files (path under the remote root -> bytes), and where each must
// land under OUT.
struct MiniExport {
  std::string variant;
  std::string repo;  // the variant's default repository
  nlohmann::json manifest;
  std::vector<std::string> fetched;  // paths under the root that --train-shards 1 fetches
  std::vector<std::string> extra;    // served but not to be fetched
};

std::string shard_bytes_of(int64_t n, int seed) {
  testing::ScratchDir scratch;
  write_shard(scratch / "s.bin", tokens(n, seed));
  return read_file(scratch / "s.bin");
}

nlohmann::json mini_tokenizer(const std::string& name, const std::string& stem) {
  return {{"name", name},
          {"kind", "sentencepiece_bpe"},
          {"model_path", "tokenizers/" + stem + ".model"},
          {"vocab_path", "tokenizers/" + stem + ".vocab"}};
}

nlohmann::json mini_dataset(const std::string& name, const std::string& tokenizer,
                            int64_t files_val, int64_t tokens_val) {
  return {{"name", name},
          {"tokenizer_name", tokenizer},
          {"stats",
           {{"files_val", files_val},
            {"files_train", 2},
            {"tokens_val", tokens_val},
            {"tokens_train", 1600}}}};
}

// The three layouts the records use (data/cached_challenge_fineweb.py; the
// sp8192 records' kevclark/parameter-golf; the CaseOps records'
// romeerp/parameter-golf-caseops-v1 with fineweb_val_bytes_ sidecars).
std::vector<MiniExport> variant_exports() {
  const std::string caseops = "fineweb10B_sp8192_lossless_caps_caseops_v1_reserved";
  const std::string caseops_tok = "fineweb_8192_bpe_lossless_caps_caseops_v1_reserved";
  nlohmann::json caseops_dataset =
      mini_dataset(caseops, "sp_bpe_8192_lossless_caps_caseops_v1_reserved", 2, 1500);
  caseops_dataset["val_bytes_glob"] = "fineweb_val_bytes_*.bin";
  return {
      {"sp1024",
       "willdepueoai/parameter-golf",
       {{"shard_size", 1000},
        {"tokenizers", {mini_tokenizer("sp_bpe_1024", "fineweb_1024_bpe")}},
        {"datasets", {mini_dataset("fineweb10B_sp1024", "sp_bpe_1024", 1, 700)}}},
       {"datasets/fineweb10B_sp1024/fineweb_val_000000.bin",
        "datasets/fineweb10B_sp1024/fineweb_train_000000.bin", "tokenizers/fineweb_1024_bpe.model",
        "tokenizers/fineweb_1024_bpe.vocab"},
       {"datasets/fineweb10B_sp1024/fineweb_train_000001.bin"}},
      {"sp8192",
       "kevclark/parameter-golf",
       {{"shard_size", 1000},
        {"tokenizers",
         {mini_tokenizer("sp_bpe_1024", "fineweb_1024_bpe"),
          mini_tokenizer("sp_bpe_8192", "fineweb_8192_bpe")}},
        {"datasets",
         {mini_dataset("fineweb10B_sp1024", "sp_bpe_1024", 1, 700),
          mini_dataset("fineweb10B_sp8192", "sp_bpe_8192", 1, 700)}}},
       {"datasets/fineweb10B_sp8192/fineweb_val_000000.bin",
        "datasets/fineweb10B_sp8192/fineweb_train_000000.bin", "tokenizers/fineweb_8192_bpe.model",
        "tokenizers/fineweb_8192_bpe.vocab"},
       {"datasets/fineweb10B_sp8192/fineweb_train_000001.bin",
        "datasets/fineweb10B_sp1024/fineweb_val_000000.bin", "tokenizers/fineweb_1024_bpe.model"}},
      {"sp8192-caseops",
       "romeerp/parameter-golf-caseops-v1",
       {{"shard_size", 1000},
        {"tokenizers",
         {mini_tokenizer("sp_bpe_8192_lossless_caps_caseops_v1_reserved", caseops_tok)}},
        {"datasets", {caseops_dataset}}},
       {"datasets/" + caseops + "/fineweb_val_000000.bin",
        "datasets/" + caseops + "/fineweb_val_000001.bin",
        "datasets/" + caseops + "/fineweb_val_bytes_000000.bin",
        "datasets/" + caseops + "/fineweb_val_bytes_000001.bin",
        "datasets/" + caseops + "/fineweb_train_000000.bin", "tokenizers/" + caseops_tok + ".model",
        "tokenizers/" + caseops_tok + ".vocab"},
       {"datasets/" + caseops + "/fineweb_train_000001.bin"}},
  };
}

// What a miniature serves at `rel`: shards of the sizes the manifest's stats
// give (val 1000 + rest, train 1000 + 600), sidecars of their shard's length.
std::string mini_file(const std::string& rel, int seed) {
  const std::string name = std::filesystem::path(rel).filename().string();
  if (name.find(".bin") == std::string::npos) return "not a real tokenizer: " + rel;
  const bool first = name.ends_with("000000.bin");
  if (name.starts_with("fineweb_train_")) return shard_bytes_of(first ? 1000 : 600, seed);
  const bool wide = rel.find("caseops") != std::string::npos;  // 1500 val tokens in 2 shards
  const int64_t n = wide ? (first ? 1000 : 500) : 700;
  return shard_bytes_of(n, name.starts_with("fineweb_val_bytes_") ? seed + 100 : seed);
}

// Every regular file under `dir`, relative to it.
std::set<std::string> files_under(const std::filesystem::path& dir) {
  std::set<std::string> files;
  if (!std::filesystem::exists(dir)) return files;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    if (e.is_regular_file()) files.insert(e.path().lexically_relative(dir).generic_string());
  }
  return files;
}

// Sets (or, with nullptr, unsets) an environment variable for one scope.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value) {
      ::setenv(name, value, 1);
    } else {
      ::unsetenv(name);
    }
  }
  ~ScopedEnv() {
    if (old_) {
      ::setenv(name_, old_->c_str(), 1);
    } else {
      ::unsetenv(name_);
    }
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

class FetchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::system("python3 --version > /dev/null 2>&1") != 0) GTEST_SKIP() << "no python3";
    export_dir_ = scratch_ / "www" / "datasets" / kRepo / "resolve" / "main" / "datasets";
    write_manifest(mini_manifest());
    std::filesystem::create_directories(export_dir_ / kDataset);
    write_shard(export_dir_ / kDataset / "fineweb_val_000000.bin", tokens(700, 1));
    const int64_t train_tokens[] = {1000, 1000, 500};
    for (int i = 0; i < 3; ++i) {
      write_shard(export_dir_ / kDataset / fmt::format("fineweb_train_{:06d}.bin", i),
                  tokens(train_tokens[i], 10 + i));
    }
    std::filesystem::create_directories(export_dir_ / "tokenizers");
    std::ofstream(export_dir_ / "tokenizers" / "fineweb_1024_bpe.model") << "not a real model";
    std::ofstream(export_dir_ / "tokenizers" / "fineweb_1024_bpe.vocab") << "not a real vocab";
  }

  void TearDown() override {
    if (server_ > 0) {
      ::kill(server_, SIGTERM);
      ::waitpid(server_, nullptr, 0);
    }
  }

  void write_manifest(const nlohmann::json& manifest) {
    std::filesystem::create_directories(export_dir_);
    write_file_atomic(export_dir_ / "manifest.json", manifest.dump(2));
  }

  // Starts range_server.py on the export; `flaky` files are cut off once.
  void start_server(const std::vector<std::string>& flaky = {}) {
    const std::string script = std::string(PGOLF_SOURCE_DIR) + "/tests/workflow/range_server.py";
    const std::string root = (scratch_ / "www").string();
    std::vector<std::string> args = {"python3", script, root, "--lifetime", "120"};
    for (const auto& f : flaky) {
      args.push_back("--flaky");
      args.push_back(f);
    }
    server_ = ::fork();
    ASSERT_GE(server_, 0);
    if (server_ == 0) {
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execvp("python3", argv.data());
      ::_exit(127);
    }
    const auto port_file = scratch_ / "port";
    for (int i = 0; i < 200 && !std::filesystem::exists(port_file); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ASSERT_TRUE(std::filesystem::exists(port_file)) << "the test server did not start";
    base_url_ = "http://127.0.0.1:" + read_file(port_file);
  }

  // Serves a miniature export under its repository (beside test/mini).
  void write_export(const MiniExport& e) {
    const auto root = scratch_ / "www" / "datasets" / e.repo / "resolve" / "main" / "datasets";
    std::filesystem::create_directories(root);
    write_file_atomic(root / "manifest.json", e.manifest.dump(2));
    int seed = 0;
    for (const auto* list : {&e.fetched, &e.extra}) {
      for (const auto& rel : *list) {
        std::filesystem::create_directories((root / rel).parent_path());
        write_file_atomic(root / rel, mini_file(rel, ++seed));
      }
    }
  }

  testing::CliRun fetch(const std::string& extra) {
    return testing::run_pgolf(fmt::format("data fetch --out {} --base-url {} --repo {} --quiet {}",
                                          out().string(), base_url_, kRepo, extra));
  }

  std::filesystem::path out() const { return scratch_ / "data"; }
  std::filesystem::path served(const std::string& rel) const { return export_dir_ / rel; }
  std::string requests() const {
    return std::filesystem::exists(scratch_ / "requests.log") ? read_file(scratch_ / "requests.log")
                                                              : "";
  }

  testing::ScratchDir scratch_;
  std::filesystem::path export_dir_;
  std::string base_url_;
  pid_t server_ = -1;
};

TEST_F(FetchTest, FetchesTheOfficialLayoutAndResumesACutTransfer) {
  start_server({"fineweb_train_000001.bin"});
  const auto run = fetch("--train-shards 2");
  ASSERT_EQ(run.exit_code, 0) << run.output;
  for (const char* rel :
       {"manifest.json", "datasets/fineweb10B_sp1024/fineweb_val_000000.bin",
        "datasets/fineweb10B_sp1024/fineweb_train_000000.bin",
        "datasets/fineweb10B_sp1024/fineweb_train_000001.bin", "tokenizers/fineweb_1024_bpe.model",
        "tokenizers/fineweb_1024_bpe.vocab"}) {
    ASSERT_TRUE(std::filesystem::exists(out() / rel)) << rel << "\n" << run.output;
    EXPECT_EQ(read_file(out() / rel), read_file(served(rel))) << rel;
    EXPECT_FALSE(std::filesystem::exists(out() / (std::string(rel) + ".part"))) << rel;
  }
  EXPECT_FALSE(std::filesystem::exists(out() / kDataset / "fineweb_train_000002.bin"));
  EXPECT_EQ(read_shard(out() / kDataset / "fineweb_train_000001.bin", 1024).size(), 1000u);
  // The cut transfer was resumed with a Range request from where it broke.
  EXPECT_NE(run.output.find("fineweb_train_000001.bin: transfer broke at"), std::string::npos)
      << run.output;
  EXPECT_NE(requests().find("fineweb_train_000001.bin bytes=1512-"), std::string::npos)
      << requests();
  EXPECT_NE(run.output.find("fetched 5 of 5 files"), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("DATA_PATH=" + (out() / kDataset).string()), std::string::npos);
  EXPECT_NE(
      run.output.find("TOKENIZER_PATH=" + (out() / "tokenizers/fineweb_1024_bpe.model").string()),
      std::string::npos);

  // Again: everything is there; one more shard is the only download.
  const auto again = fetch("--train-shards 3");
  ASSERT_EQ(again.exit_code, 0) << again.output;
  EXPECT_NE(again.output.find("fetched 1 of 6 files"), std::string::npos) << again.output;
}

TEST_F(FetchTest, ResumesAPartLeftByAnEarlierRunAndChecksTheServersHash) {
  const std::string val = std::string(kDataset) + "/fineweb_val_000000.bin";
  const std::string bytes = read_file(served(val));
  // Hugging Face's X-Linked-Etag: the file's SHA-256.
  write_file_atomic(
      scratch_ / "etags.json",
      nlohmann::json{
          {fmt::format("/datasets/{}/resolve/main/datasets/{}", kRepo, val), sha256_hex(bytes)}}
          .dump());
  std::filesystem::create_directories(out() / kDataset);
  write_file_atomic(out() / (val + ".part"), bytes.substr(0, 400));
  start_server();
  const auto run = fetch("--train-shards 0");
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_EQ(read_file(out() / val), bytes);
  EXPECT_NE(requests().find("fineweb_val_000000.bin bytes=400-"), std::string::npos) << requests();
  EXPECT_NE(run.output.find("resumed from 400 B"), std::string::npos) << run.output;
}

TEST_F(FetchTest, AHashMismatchIsAnErrorAndDropsTheDownload) {
  const std::string val = std::string(kDataset) + "/fineweb_val_000000.bin";
  nlohmann::json manifest = mini_manifest();
  manifest["files"] = {{val, {{"sha256", std::string(64, '0')}}}};
  write_manifest(manifest);
  start_server();
  const auto run = fetch("--train-shards 1");
  EXPECT_NE(run.exit_code, 0);
  EXPECT_NE(run.output.find("SHA-256 mismatch"), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("the manifest says 0000"), std::string::npos) << run.output;
  EXPECT_FALSE(std::filesystem::exists(out() / val));
  EXPECT_FALSE(std::filesystem::exists(out() / (val + ".part")));

  // The server's X-Linked-Etag is checked the same way.
  write_manifest(mini_manifest());
  const std::string train = std::string(kDataset) + "/fineweb_train_000000.bin";
  write_file_atomic(
      scratch_ / "etags.json",
      nlohmann::json{{fmt::format("/datasets/{}/resolve/main/datasets/{}", kRepo, train),
                      std::string(64, 'a')}}
          .dump());
  const auto again = fetch("--train-shards 1");
  EXPECT_NE(again.exit_code, 0);
  EXPECT_NE(again.output.find("the server (X-Linked-Etag) says aaaa"), std::string::npos)
      << again.output;
  EXPECT_TRUE(std::filesystem::exists(out() / val));  // fetched before the bad one
}

TEST_F(FetchTest, ASizeThatDisagreesWithTheManifestIsAnError) {
  nlohmann::json manifest = mini_manifest();
  manifest["datasets"][0]["stats"]["tokens_val"] = 650;  // the served shard has 700
  write_manifest(manifest);
  start_server();
  const auto run = fetch("--train-shards 0");
  EXPECT_NE(run.exit_code, 0);
  EXPECT_NE(run.output.find("2424 bytes, but the manifest says 2324 bytes"), std::string::npos)
      << run.output;
}

TEST_F(FetchTest, OfflineIsAClearError) {
  base_url_ = "http://127.0.0.1:9";  // the discard port: nothing listens there
  const auto run = fetch("");
  EXPECT_NE(run.exit_code, 0);
  EXPECT_NE(run.output.find("cannot reach http://127.0.0.1:9/datasets/test/mini/resolve/main/"
                            "datasets/manifest.json"),
            std::string::npos)
      << run.output;
  EXPECT_NE(run.output.find("Offline?"), std::string::npos) << run.output;
}

TEST_F(FetchTest, EachVariantLandsInTheLayoutItsRecordsUse) {
  const ScopedEnv no_repo("MATCHED_FINEWEB_REPO_ID", nullptr);  // each variant's own repository
  for (const MiniExport& e : variant_exports()) write_export(e);
  start_server();
  for (const MiniExport& e : variant_exports()) {
    SCOPED_TRACE(e.variant);
    const auto out_dir = scratch_ / ("out_" + e.variant);
    const auto run = testing::run_pgolf(
        fmt::format("data fetch --out {} --base-url {} --quiet --variant {} --train-shards 1",
                    out_dir.string(), base_url_, e.variant));
    ASSERT_EQ(run.exit_code, 0) << run.output;
    EXPECT_NE(run.output.find(fmt::format("from {}/datasets/{} into", base_url_, e.repo)),
              std::string::npos)
        << run.output;
    // Exactly the layout's files, each where the record's scripts put it.
    std::set<std::string> expected = {"manifest.json"};
    expected.insert(e.fetched.begin(), e.fetched.end());
    EXPECT_EQ(files_under(out_dir), expected) << run.output;
    const auto served_root =
        scratch_ / "www" / "datasets" / e.repo / "resolve" / "main" / "datasets";
    for (const auto& rel : e.fetched) {
      if (std::filesystem::exists(out_dir / rel)) {
        EXPECT_EQ(read_file(out_dir / rel), read_file(served_root / rel)) << rel;
      }
    }
    const std::string dataset = e.fetched[0].substr(0, e.fetched[0].rfind('/'));
    EXPECT_NE(run.output.find("DATA_PATH=" + (out_dir / dataset).string() + "\n"),
              std::string::npos)
        << run.output;
    const auto model = std::find_if(e.fetched.begin(), e.fetched.end(),
                                    [](const std::string& r) { return r.ends_with(".model"); });
    EXPECT_NE(run.output.find("TOKENIZER_PATH=" + (out_dir / *model).string()), std::string::npos)
        << run.output;
    // Run again: all present and checked (sidecars against their shards), nothing fetched.
    const auto again = testing::run_pgolf(
        fmt::format("data fetch --out {} --base-url {} --quiet --variant {} --train-shards 1",
                    out_dir.string(), base_url_, e.variant));
    ASSERT_EQ(again.exit_code, 0) << again.output;
    EXPECT_NE(again.output.find(fmt::format("fetched 0 of {} files", e.fetched.size())),
              std::string::npos)
        << again.output;
  }

  // MATCHED_FINEWEB_REPO_ID, when set, overrides the variant's repository.
  const ScopedEnv mini("MATCHED_FINEWEB_REPO_ID", kRepo);
  const auto run = testing::run_pgolf(fmt::format(
      "data fetch --out {} --base-url {} --quiet --train-shards 0", out().string(), base_url_));
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_NE(run.output.find("/datasets/test/mini into"), std::string::npos) << run.output;
}

TEST_F(FetchTest, ASidecarThatDoesNotFitItsShardIsAnError) {
  MiniExport e = variant_exports()[2];
  e.repo = kRepo;
  for (auto& d : e.manifest["datasets"]) d["stats"].erase("tokens_val");  // no size from stats
  write_export(e);
  const std::string sidecar = e.fetched[2];  // fineweb_val_bytes_000000.bin
  write_file_atomic(served(sidecar), shard_bytes_of(999, 3));
  start_server();
  const auto run = fetch("--variant sp8192-caseops --train-shards 0");
  EXPECT_NE(run.exit_code, 0);
  EXPECT_NE(run.output.find("but its validation shard"), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("one count per token of its shard"), std::string::npos) << run.output;
}

TEST_F(FetchTest, AnUnknownVariantFailsBeforeAnyDownload) {
  start_server();
  const auto run = fetch("--variant sp8192-casefold");
  EXPECT_NE(run.exit_code, 0);
  EXPECT_NE(run.output.find("--variant sp8192-casefold: unknown; expected sp1024, sp8192 or "
                            "sp8192-caseops"),
            std::string::npos)
      << run.output;
  EXPECT_EQ(requests(), "");
  EXPECT_FALSE(std::filesystem::exists(out()));
}

TEST(FetchPlan, VariantsNameTheirDatasetRepositoryAndSidecars) {
  EXPECT_EQ(fetch_variant("sp1024").repo_id, "willdepueoai/parameter-golf");
  EXPECT_EQ(fetch_variant("sp8192").repo_id, "kevclark/parameter-golf");
  EXPECT_EQ(fetch_variant("sp8192").dataset, "fineweb10B_sp8192");
  const FetchVariant caseops = fetch_variant("sp8192-caseops");
  EXPECT_EQ(caseops.repo_id, "romeerp/parameter-golf-caseops-v1");
  EXPECT_EQ(caseops.dataset, "fineweb10B_sp8192_lossless_caps_caseops_v1_reserved");
  EXPECT_TRUE(caseops.val_byte_sidecars);
  EXPECT_EQ(fetch_variant("sp8192_lossless_caps_caseops_v1_reserved").dataset, caseops.dataset);
  EXPECT_FALSE(fetch_variant("sp8192").val_byte_sidecars);
  EXPECT_EQ(fetch_variant("sp4096").repo_id, "willdepueoai/parameter-golf");
  EXPECT_PGOLF_ERROR(fetch_variant("caseops"), "unknown; expected sp1024, sp8192 or");

  // The sidecars follow the validation shards even where the manifest does
  // not announce them (the variant requires them), each paired with its shard.
  FetchOptions o;
  o.out_dir = "/data";
  o.variant = "sp8192-caseops";
  o.train_shards = 1;
  nlohmann::json manifest = variant_exports()[2].manifest;
  manifest["datasets"][0].erase("val_bytes_glob");
  const auto plan = plan_fetch(manifest, o);
  ASSERT_EQ(plan.size(), 7u);
  const std::string dir = "/data/datasets/fineweb10B_sp8192_lossless_caps_caseops_v1_reserved/";
  EXPECT_EQ(plan[2].local, dir + "fineweb_val_bytes_000000.bin");
  EXPECT_EQ(plan[3].sidecar_of, dir + "fineweb_val_000001.bin");
  EXPECT_EQ(plan[3].bytes, 1024 + 2 * 500);
  EXPECT_EQ(plan[4].local, dir + "fineweb_train_000000.bin");
  EXPECT_EQ(fetch_url(o, plan[2].remote),
            "https://huggingface.co/datasets/romeerp/parameter-golf-caseops-v1/resolve/main/"
            "datasets/datasets/fineweb10B_sp8192_lossless_caps_caseops_v1_reserved/"
            "fineweb_val_bytes_000000.bin");
  o.repo_id = "someone/else";  // --repo or MATCHED_FINEWEB_REPO_ID
  EXPECT_EQ(fetch_repo(o), "someone/else");
  // A manifest entry with val_bytes_glob brings sidecars for any variant, as
  // the record's downloader does; sp1024's official entry has none.
  FetchOptions plain;
  plain.train_shards = 0;
  EXPECT_EQ(plan_fetch(mini_manifest(), plain).size(), 3u);
  nlohmann::json announced = mini_manifest();
  announced["datasets"][0]["val_bytes_glob"] = "fineweb_val_bytes_*.bin";
  EXPECT_EQ(plan_fetch(announced, plain).size(), 4u);
  EXPECT_EQ(plan_fetch(announced, plain)[1].local,
            "data/datasets/fineweb10B_sp1024/fineweb_val_bytes_000000.bin");
}

TEST(FetchPlan, FollowsTheManifestAsTheOfficialDownloader) {
  FetchOptions o;
  o.out_dir = "/data";
  o.train_shards = 2;
  const auto plan = plan_fetch(mini_manifest(), o);
  ASSERT_EQ(plan.size(), 5u);
  EXPECT_EQ(plan[0].remote, "datasets/datasets/fineweb10B_sp1024/fineweb_val_000000.bin");
  EXPECT_EQ(plan[0].local, "/data/datasets/fineweb10B_sp1024/fineweb_val_000000.bin");
  EXPECT_EQ(plan[0].bytes, 1024 + 2 * 700);
  EXPECT_EQ(plan[2].bytes, 1024 + 2 * 1000);
  EXPECT_TRUE(plan[2].shard);
  EXPECT_EQ(plan[3].local, "/data/tokenizers/fineweb_1024_bpe.model");
  EXPECT_FALSE(plan[3].bytes.has_value());
  EXPECT_EQ(fetch_url(o, plan[0].remote),
            "https://huggingface.co/datasets/willdepueoai/parameter-golf/resolve/main/datasets/"
            "datasets/fineweb10B_sp1024/fineweb_val_000000.bin");
  o.train_shards = 3;
  EXPECT_EQ(plan_fetch(mini_manifest(), o)[3].bytes, 1024 + 2 * 500);  // the short last shard
  o.with_docs = true;
  EXPECT_EQ(plan_fetch(mini_manifest(), o)[1].local, "/data/docs_selected.jsonl");
  o.train_shards = 4;
  EXPECT_PGOLF_ERROR(plan_fetch(mini_manifest(), o), "has only 3 training shards");
  o.train_shards = 1;
  o.variant = "sp4096";
  EXPECT_PGOLF_ERROR(plan_fetch(mini_manifest(), o), "no datasets entry named fineweb10B_sp4096");
  o.variant = "gpt2";
  EXPECT_PGOLF_ERROR(plan_fetch(mini_manifest(), o), "or byte260)");
  EXPECT_EQ(dataset_name_for_variant("byte260"), "fineweb10B_byte260");
}

TEST(FetchPlan, ShardFilesAreChecked) {
  testing::ScratchDir scratch;
  write_shard(scratch / "a.bin", tokens(10, 0));
  EXPECT_NO_THROW(check_shard_file(scratch / "a.bin"));
  write_file_atomic(scratch / "b.bin", read_file(scratch / "a.bin").substr(0, 1030));
  EXPECT_PGOLF_ERROR(check_shard_file(scratch / "b.bin"), "header says 10 tokens");
  write_file_atomic(scratch / "c.bin", std::string(2048, 'x'));
  EXPECT_PGOLF_ERROR(check_shard_file(scratch / "c.bin"), "not a challenge shard");
}

}  // namespace
}  // namespace pgolf
