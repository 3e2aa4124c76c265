// `pgolf data fetch` against a miniature export in the official layout,
// served on loopback by range_server.py (Range requests, X-Linked-Etag, and
// connections cut half-way): layout, resume within a run and across runs,
// hash mismatches, the offline error, and the manifest-driven plan.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
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
  EXPECT_PGOLF_ERROR(plan_fetch(mini_manifest(), o), "expected sp<VOCAB_SIZE>");
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
