// pgolf data fetch: the challenge's published FineWeb export (workflow/fetch.h).
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <memory>

#include "cli/workflow/commands.h"
#include "common/format.h"
#include "common/progress.h"
#include "config/config.h"
#include "config/options.h"
#include "workflow/fetch.h"

namespace pgolf {

Command add_data_fetch_command(CLI::App& data) {
  auto o = std::make_shared<FetchOptions>();
  CLI::App* sub = data.add_subcommand(
      "fetch", "Download the challenge's FineWeb export (tokenizer, val split, N train shards)");
  sub->add_option("--out", o->out_dir, "data folder (datasets/, tokenizers/, manifest.json)")
      ->capture_default_str();
  sub->add_option("--variant", o->variant,
                  "export: sp1024 (the challenge's), sp8192 (kevclark/parameter-golf), "
                  "sp8192-caseops (romeerp/parameter-golf-caseops-v1, with the val byte "
                  "sidecars); also sp<N> or byte260 from the challenge's repository")
      ->capture_default_str();
  sub->add_option("--train-shards", o->train_shards,
                  "training shards to fetch (10^8 tokens each; the first N of the export)")
      ->capture_default_str();
  sub->add_flag("--with-docs", o->with_docs,
                "also fetch docs_selected.jsonl and its sidecar (tokenizer retraining)");
  sub->add_flag("--skip-manifest", o->skip_manifest, "use OUT/manifest.json as it is");
  sub->add_option("--base-url", o->base_url, "hub address (env PGOLF_FETCH_BASE_URL)")
      ->capture_default_str();
  sub->add_option("--repo", o->repo_id,
                  "dataset repository (env MATCHED_FINEWEB_REPO_ID; default: the variant's)");
  sub->add_option("--remote-root", o->remote_root,
                  "export folder in the repository (env MATCHED_FINEWEB_REMOTE_ROOT_PREFIX)")
      ->capture_default_str();
  sub->add_option("--revision", o->revision, "repository revision")->capture_default_str();
  sub->add_option("--retries", o->retries, "resumed attempts per file after a broken transfer")
      ->capture_default_str();
  sub->add_flag("--quiet", o->quiet, "plain progress lines instead of a live line");
  return {sub, [o, sub] {
            // The hub's address and layout: a flag, else the environment's
            // rows of the option table (tools), else the official export; the
            // repository: a flag, else MATCHED_FINEWEB_REPO_ID when it is set,
            // else the one the variant's records name.
            const ToolsConfig tools = config_from_environment().tools;
            if (sub->count("--base-url") == 0 && !tools.fetch_base_url.empty())
              o->base_url = tools.fetch_base_url;
            if (sub->count("--repo") == 0) {
              Config probe;
              probe.tools.fetch_repo_id.clear();  // empty unless the environment sets it
              apply_environment(probe);
              o->repo_id = probe.tools.fetch_repo_id;
            }
            if (sub->count("--remote-root") == 0) o->remote_root = tools.fetch_remote_root;
            const std::string repo = fetch_repo(*o);  // fails for an unknown variant
            fmt::print("fetching {} ({} training shards) from {}/datasets/{} into {}\n", o->variant,
                       o->train_shards, o->base_url, repo, o->out_dir.string());
            const FetchSummary s = fetch_export(*o);
            fmt::print("fetched {} of {} files ({}); the others were already there\n", s.downloaded,
                       s.files, format_bytes(static_cast<double>(s.bytes)));
            fmt::print("DATA_PATH={}\n", s.dataset_dir.string());
            if (!s.tokenizer_model.empty())
              fmt::print("TOKENIZER_PATH={}\n", s.tokenizer_model.string());
            return 0;
          }};
}

}  // namespace pgolf
