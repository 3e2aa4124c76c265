#include "workflow/fetch.h"

#include <fmt/format.h>

#include <cstdlib>
#include <fstream>

#include "common/error.h"
#include "common/format.h"
#include "common/fs.h"
#include "common/progress.h"
#include "data/shard.h"
#include "workflow/http.h"
#include "workflow/sha256.h"

namespace pgolf {
namespace {

std::string join_remote(const std::string& root, const std::string& path) {
  return root.empty() ? path : root + "/" + path;
}

// The official local layout: the remote root is dropped, datasets/ and
// tokenizers/ keep their names, anything else lands in OUT itself.
std::filesystem::path local_path(const FetchOptions& o, const std::string& remote) {
  std::string rel = remote;
  if (!o.remote_root.empty() && rel.rfind(o.remote_root + "/", 0) == 0) {
    rel = rel.substr(o.remote_root.size() + 1);
  }
  return o.out_dir / std::filesystem::path(rel);
}

const nlohmann::json& find_named(const nlohmann::json& manifest, const char* list,
                                 const std::string& name) {
  PGOLF_CHECK(manifest.contains(list) && manifest[list].is_array(),
              "manifest.json has no \"{}\" list", list);
  for (const auto& entry : manifest[list]) {
    if (entry.value("name", "") == name) return entry;
  }
  fail("manifest.json: no {} entry named {}", list, name);
}

int64_t stat_of(const nlohmann::json& dataset, const char* key) {
  const auto& stats = dataset.value("stats", nlohmann::json::object());
  PGOLF_CHECK(stats.contains(key) && stats[key].is_number_integer(),
              "manifest.json: dataset {} has no stats.{}", dataset.value("name", "?"), key);
  return stats[key].get<int64_t>();
}

// Shard i of a split holding `tokens` in shards of `shard_size`: all full but the last.
std::optional<int64_t> shard_bytes(const nlohmann::json& manifest, const nlohmann::json& dataset,
                                   const char* split, int64_t index) {
  const std::string key = fmt::format("tokens_{}", split);
  const auto& stats = dataset.value("stats", nlohmann::json::object());
  if (!manifest.contains("shard_size") || !stats.contains(key)) return std::nullopt;
  const int64_t shard_size = manifest["shard_size"].get<int64_t>();
  const int64_t tokens = stats[key].get<int64_t>();
  const int64_t n = std::min(shard_size, tokens - index * shard_size);
  if (shard_size <= 0 || n <= 0) return std::nullopt;
  return kShardHeaderBytes + 2 * n;
}

// The manifest's optional per-file table, keyed by path under the root.
void apply_file_table(const nlohmann::json& manifest, const FetchOptions& o, FetchItem& item) {
  if (!manifest.contains("files") || !manifest["files"].is_object()) return;
  std::string key = item.remote;
  if (!o.remote_root.empty() && key.rfind(o.remote_root + "/", 0) == 0) {
    key = key.substr(o.remote_root.size() + 1);
  }
  const auto& files = manifest["files"];
  if (!files.contains(key)) return;
  const auto& entry = files[key];
  if (entry.contains("bytes")) item.bytes = entry["bytes"].get<int64_t>();
  if (entry.contains("sha256")) item.sha256 = entry["sha256"].get<std::string>();
}

FetchItem make_item(const FetchOptions& o, const std::string& path_under_root) {
  FetchItem item;
  item.remote = join_remote(o.remote_root, path_under_root);
  item.local = local_path(o, item.remote);
  return item;
}

void check_size(const FetchItem& item, const std::filesystem::path& file, int64_t expected,
                const char* source) {
  const auto actual = static_cast<int64_t>(std::filesystem::file_size(file));
  PGOLF_CHECK(actual == expected, "{}: {} bytes, but {} says {} bytes", item.remote, actual, source,
              expected);
}

// A byte sidecar holds one count per token of its validation shard (fetched
// just before it), so the two files have the same size.
void check_sidecar(const FetchItem& item, const std::filesystem::path& file) {
  if (item.sidecar_of.empty() || !std::filesystem::exists(item.sidecar_of)) return;
  const auto shard = static_cast<int64_t>(std::filesystem::file_size(item.sidecar_of));
  const auto actual = static_cast<int64_t>(std::filesystem::file_size(file));
  PGOLF_CHECK(actual == shard,
              "{}: {} bytes, but its validation shard {} has {} bytes (a byte sidecar has one "
              "count per token of its shard)",
              item.remote, actual, item.sidecar_of.string(), shard);
}

// Everything known about `file` (the finished .part) must hold.
void verify(const FetchItem& item, const std::filesystem::path& file, const DownloadResult& r) {
  if (item.bytes) check_size(item, file, *item.bytes, "the manifest");
  check_sidecar(item, file);
  if (r.linked_size >= 0) check_size(item, file, r.linked_size, "the server (X-Linked-Size)");
  if (item.shard) check_shard_file(file);
  if (!item.sha256 && r.linked_sha256.empty()) return;
  const std::string actual = sha256_file(file);
  for (const auto& [expected, source] :
       {std::pair{item.sha256.value_or(""), "the manifest"},
        std::pair{r.linked_sha256, "the server (X-Linked-Etag)"}}) {
    if (expected.empty() || actual == expected) continue;
    std::filesystem::remove(file);  // resuming a corrupt file cannot fix it
    fail(
        "{}: SHA-256 mismatch: got {}, {} says {}. The partial download was deleted; run again "
        "to download it afresh",
        item.remote, actual, source, expected);
  }
}

// Downloads one item through its .part, resuming after broken transfers.
int64_t download_item(const FetchOptions& o, const FetchItem& item) {
  std::filesystem::create_directories(item.local.parent_path());
  const std::filesystem::path part = item.local.string() + ".part";
  const std::string url = fetch_url(o, item.remote);
  Progress progress(item.local.filename().string(), item.bytes.value_or(-1), "bytes",
                    {.quiet = o.quiet, .interval_s = 10.0, .out = stdout, .bytes = true});
  DownloadOptions options;
  options.on_progress = [&](int64_t done, int64_t total) {
    if (total > 0) progress.set_total(total);
    progress.update(done);
  };
  const int64_t before =
      std::filesystem::exists(part) ? static_cast<int64_t>(std::filesystem::file_size(part)) : 0;
  DownloadResult r;
  for (int attempt = 0;; ++attempt) {
    r = download_to_part(url, part, options);
    if (r.broken.empty()) break;
    PGOLF_CHECK(attempt < o.retries,
                "{}: the transfer broke {} times ({}); {} bytes are kept in {}: run again to "
                "resume",
                url, attempt + 1, r.broken, r.part_bytes, part.string());
    progress.message(fmt::format("{}: transfer broke at {} ({}); resuming",
                                 item.local.filename().string(),
                                 format_bytes(static_cast<double>(r.part_bytes)), r.broken));
  }
  const std::string resumed =
      before > 0 && r.resumed_from > 0
          ? fmt::format("resumed from {}", format_bytes(static_cast<double>(before)))
          : "";
  progress.finish(resumed);
  verify(item, part, r);
  std::filesystem::rename(part, item.local);
  return r.part_bytes - (r.resumed_from > 0 ? before : 0);
}

nlohmann::json load_manifest(const FetchOptions& o) {
  const FetchItem item = make_item(o, "manifest.json");
  if (o.skip_manifest) {
    PGOLF_CHECK(std::filesystem::exists(item.local),
                "--skip-manifest: {} is not there (the shard counts come from it)",
                item.local.string());
  } else {
    std::filesystem::create_directories(item.local.parent_path());
    write_file_atomic(item.local, download_to_string(fetch_url(o, item.remote)));
  }
  try {
    return nlohmann::json::parse(read_file(item.local));
  } catch (const nlohmann::json::exception& e) {
    fail("{}: not valid JSON ({})", item.local.string(), e.what());
  }
}

}  // namespace

FetchVariant fetch_variant(const std::string& variant) {
  // The official downloader's default repository (cached_challenge_fineweb.py).
  const std::string official = "willdepueoai/parameter-golf";
  // The sp8192 records fetch with MATCHED_FINEWEB_REPO_ID=kevclark/parameter-golf.
  if (variant == "sp8192") return {"fineweb10B_sp8192", "kevclark/parameter-golf", false};
  // The CaseOps records (#1729 onwards): romeerp/parameter-golf-caseops-v1, fetched
  // with --variant sp8192_lossless_caps_caseops_v1_reserved; the record's
  // downloader adds the validation byte sidecars.
  if (variant == "sp8192-caseops" || variant == "sp8192_lossless_caps_caseops_v1_reserved") {
    return {"fineweb10B_sp8192_lossless_caps_caseops_v1_reserved",
            "romeerp/parameter-golf-caseops-v1", true};
  }
  if (variant == "byte260") return {"fineweb10B_byte260", official, false};
  const bool sp = variant.size() > 2 && variant.rfind("sp", 0) == 0 &&
                  variant.find_first_not_of("0123456789", 2) == std::string::npos;
  PGOLF_CHECK(sp,
              "--variant {}: unknown; expected sp1024, sp8192 or sp8192-caseops (or, from the "
              "challenge's export, sp<VOCAB_SIZE> or byte260)",
              variant);
  return {"fineweb10B_" + variant, official, false};
}

std::string dataset_name_for_variant(const std::string& variant) {
  return fetch_variant(variant).dataset;
}

std::string fetch_repo(const FetchOptions& o) {
  const FetchVariant variant = fetch_variant(o.variant);  // checks the name in any case
  return o.repo_id.empty() ? variant.repo_id : o.repo_id;
}

std::string fetch_url(const FetchOptions& o, const std::string& remote) {
  std::string base = o.base_url;
  while (!base.empty() && base.back() == '/') base.pop_back();
  return fmt::format("{}/datasets/{}/resolve/{}/{}", base, fetch_repo(o), o.revision, remote);
}

std::vector<FetchItem> plan_fetch(const nlohmann::json& manifest, const FetchOptions& o) {
  PGOLF_CHECK(o.train_shards >= 0, "--train-shards must be non-negative");
  const FetchVariant variant = fetch_variant(o.variant);
  const std::string& name = variant.dataset;
  const nlohmann::json& dataset = find_named(manifest, "datasets", name);
  const int64_t max_train = stat_of(dataset, "files_train");
  const int64_t val_shards = stat_of(dataset, "files_val");
  PGOLF_CHECK(o.train_shards <= max_train, "{} has only {} training shards on {}, asked for {}",
              o.variant, max_train, fetch_repo(o), o.train_shards);
  const nlohmann::json& tokenizer =
      find_named(manifest, "tokenizers", dataset.value("tokenizer_name", ""));

  std::vector<FetchItem> plan;
  if (o.with_docs) {
    plan.push_back(make_item(o, "docs_selected.source_manifest.json"));
    plan.push_back(make_item(o, "docs_selected.jsonl"));  // its hash is in the sidecar
  }
  const std::string prefix = "datasets/" + name;
  const auto shard_item = [&](const char* split, const char* kind, int64_t i) {
    FetchItem item = make_item(o, fmt::format("{}/fineweb_{}_{:06d}.bin", prefix, kind, i));
    item.bytes = shard_bytes(manifest, dataset, split, i);
    item.shard = true;
    return item;
  };
  const size_t first_val = plan.size();
  for (int64_t i = 0; i < val_shards; ++i) plan.push_back(shard_item("val", "val", i));
  // The byte sidecars, after the validation shards as the record's downloader
  // orders them: same header and size as their shard.
  if (variant.val_byte_sidecars || dataset.contains("val_bytes_glob")) {
    for (int64_t i = 0; i < val_shards; ++i) {
      FetchItem item = shard_item("val", "val_bytes", i);
      item.sidecar_of = plan[first_val + static_cast<size_t>(i)].local;
      plan.push_back(item);
    }
  }
  for (int64_t i = 0; i < o.train_shards; ++i) plan.push_back(shard_item("train", "train", i));
  bool any_tokenizer_file = false;
  for (const char* key : {"model_path", "vocab_path", "path"}) {
    if (!tokenizer.contains(key) || !tokenizer[key].is_string()) continue;
    plan.push_back(make_item(o, tokenizer[key].get<std::string>()));
    any_tokenizer_file = true;
  }
  PGOLF_CHECK(any_tokenizer_file, "manifest.json: tokenizer {} names no files to download",
              tokenizer.value("name", "?"));
  for (FetchItem& item : plan) apply_file_table(manifest, o, item);
  return plan;
}

void check_shard_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  PGOLF_CHECK(in.good(), "{}: cannot open for reading", path.string());
  std::array<int32_t, 3> head{};
  in.read(reinterpret_cast<char*>(head.data()), sizeof(head));
  PGOLF_CHECK(in.gcount() == sizeof(head) && head[0] == kShardMagic && head[1] == kShardVersion,
              "{}: not a challenge shard (bad magic or version)", path.string());
  const int64_t expected = kShardHeaderBytes + 2 * static_cast<int64_t>(head[2]);
  const auto actual = static_cast<int64_t>(std::filesystem::file_size(path));
  PGOLF_CHECK(head[2] >= 0 && actual == expected,
              "{}: the header says {} tokens ({} bytes) but the file has {} bytes", path.string(),
              head[2], expected, actual);
}

FetchSummary fetch_export(const FetchOptions& o) {
  fetch_variant(o.variant);  // an unknown variant fails before anything is downloaded
  const nlohmann::json manifest = load_manifest(o);
  std::vector<FetchItem> plan = plan_fetch(manifest, o);
  FetchSummary summary;
  summary.dataset_dir = o.out_dir / "datasets" / dataset_name_for_variant(o.variant);
  for (size_t i = 0; i < plan.size(); ++i) {
    FetchItem& item = plan[i];
    if (item.local.filename() == "docs_selected.jsonl" && i > 0) {
      // The sidecar (fetched just before) carries the documents' hash.
      const auto sidecar = nlohmann::json::parse(read_file(plan[i - 1].local));
      if (sidecar.contains("docs_sha256") && sidecar["docs_sha256"].is_string()) {
        item.sha256 = sidecar["docs_sha256"].get<std::string>();
      }
    }
    if (item.local.extension() == ".model") summary.tokenizer_model = item.local;
    ++summary.files;
    if (std::filesystem::exists(item.local)) {
      // Present from an earlier run: cheap checks only (no re-hash of GBs).
      if (item.bytes) check_size(item, item.local, *item.bytes, "the manifest");
      if (item.shard) check_shard_file(item.local);
      check_sidecar(item, item.local);
      continue;
    }
    summary.bytes += download_item(o, item);
    ++summary.downloaded;
  }
  return summary;
}

}  // namespace pgolf
