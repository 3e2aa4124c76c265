// `pgolf data fetch`: a published FineWeb export, laid out as the official
// downloader (data/cached_challenge_fineweb.py of openai/parameter-golf) lays
// it out, so DATA_PATH / TOKENIZER_PATH defaults find it. --variant picks the
// export and the hub repository the records name (fetch_variant):
//
//   sp1024          willdepueoai/parameter-golf        (the challenge's own)
//   sp8192          kevclark/parameter-golf             (the sp8192 records)
//   sp8192-caseops  romeerp/parameter-golf-caseops-v1   (the CaseOps records),
//                   dataset fineweb10B_sp8192_lossless_caps_caseops_v1_reserved
//                   with its validation byte sidecars
//   sp<N>, byte260  willdepueoai/parameter-golf        (as the official script)
//
//   remote  {base}/datasets/{repo}/resolve/{revision}/{root}/manifest.json
//           {root}/datasets/{dataset}/fineweb_val_NNNNNN.bin
//           {root}/datasets/{dataset}/fineweb_val_bytes_NNNNNN.bin (sidecars)
//           {root}/datasets/{dataset}/fineweb_train_NNNNNN.bin
//           {root}/<the tokenizer entry's model_path, vocab_path or path>
//           {root}/docs_selected.jsonl (+ .source_manifest.json), --with-docs only
//   local   OUT/manifest.json, OUT/datasets/..., OUT/tokenizers/..., OUT/docs_selected.*
//
// The manifest drives it: the dataset entry named {dataset} gives the shard
// counts (stats.files_val, stats.files_train) and its tokenizer's name; the
// tokenizer entry names the tokenizer files. Every validation shard (and, for
// a variant with sidecars or an entry with "val_bytes_glob", its
// fineweb_val_bytes_ sidecar) and the first N training shards are fetched.
//
// Verification, with whatever the sources give: each shard's size from the
// manifest's stats (tokens per split cut into shards of shard_size tokens) and
// its own header (magic, version, token count); a sidecar has the header and
// size of its validation shard; a SHA-256 from the manifest (an optional
// "files": {path: {"bytes", "sha256"}} map), from Hugging Face's
// X-Linked-Etag/X-Linked-Size headers, or, for docs_selected.jsonl, the
// sidecar's docs_sha256. Downloads go through a .part file and resume.
#pragma once

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace pgolf {

struct FetchOptions {
  std::string base_url = "https://huggingface.co";  // env PGOLF_FETCH_BASE_URL (tools)
  std::string repo_id;  // env MATCHED_FINEWEB_REPO_ID; empty: the variant's repository
  std::string remote_root = "datasets";  // env MATCHED_FINEWEB_REMOTE_ROOT_PREFIX
  std::string revision = "main";
  std::string variant = "sp1024";  // a fetch_variant name
  int64_t train_shards = 80;
  bool with_docs = false;
  bool skip_manifest = false;  // use OUT/manifest.json as it is
  std::filesystem::path out_dir = "data";
  int retries = 3;  // resumed attempts per file after a broken transfer
  bool quiet = false;
};

// What a --variant names: the export's dataset folder and where it is hosted.
struct FetchVariant {
  std::string dataset;             // "fineweb10B_sp8192_lossless_caps_caseops_v1_reserved"
  std::string repo_id;             // the hub repository the records fetch it from
  bool val_byte_sidecars = false;  // fineweb_val_bytes_NNNNNN.bin beside each val shard
};

// sp1024, sp8192, sp8192-caseops (alias: sp8192_lossless_caps_caseops_v1_reserved,
// the record downloader's name), and the official script's sp<N> / byte260;
// anything else is an error naming the variants.
FetchVariant fetch_variant(const std::string& variant);

// "fineweb10B_sp1024" for sp1024: fetch_variant(variant).dataset.
std::string dataset_name_for_variant(const std::string& variant);

// The repository fetched from: options.repo_id, else the variant's.
std::string fetch_repo(const FetchOptions& options);

// One file of the plan.
struct FetchItem {
  std::string remote;  // path under the repo, "{root}/datasets/.../fineweb_val_000000.bin"
  std::filesystem::path local;
  std::optional<int64_t> bytes;       // expected size, when known
  std::optional<std::string> sha256;  // expected hash, when known
  bool shard = false;                 // check the challenge shard header too
  std::filesystem::path sidecar_of;   // a byte sidecar: its val shard's local path
};

// What to fetch, from a parsed manifest (the manifest itself not included).
std::vector<FetchItem> plan_fetch(const nlohmann::json& manifest, const FetchOptions& options);

// The URL of `remote` (a path under the repo).
std::string fetch_url(const FetchOptions& options, const std::string& remote);

struct FetchSummary {
  int64_t files = 0;
  int64_t downloaded = 0;  // files transferred now (the others were present)
  int64_t bytes = 0;       // bytes transferred now
  std::filesystem::path dataset_dir;
  std::filesystem::path tokenizer_model;  // empty when the tokenizer has no .model
};

// Fetches the manifest (unless skipped) and every planned file into
// options.out_dir, printing progress and one line per file.
FetchSummary fetch_export(const FetchOptions& options);

// Fails unless `path` is a whole challenge shard: 256 int32 header (magic
// 20240520, version 1, token count n) and then exactly n uint16 tokens.
void check_shard_file(const std::filesystem::path& path);

}  // namespace pgolf
