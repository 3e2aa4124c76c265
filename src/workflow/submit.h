// `pgolf submit RUN... --out DIR`: a folder for the challenge's records/
// tree, as its README asks of a submission and as the accepted records look:
//   README.md        the method (configuration against the baseline preset,
//                    the command line), the per-seed results table with mean
//                    and std, the significance test against --against, and
//                    the size and legality statements, each checked
//   submission.json  author, github_id, name, blurb, date, track, val_loss,
//                    val_bpb (means), their stds, seeds, seed_results, bytes_total,
//                    bytes_code, compliance
//   train_seed<S>.log  each run's train.log
//   pgolf/           the counted source (src/ less src/workflow, cmake/,
//                    CMakeLists.txt): the "code" of the code + model bytes
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "workflow/run_record.h"

namespace pgolf {

struct SubmitOptions {
  std::filesystem::path out;
  std::string name;  // empty: "pgolf <preset>"
  std::string author;
  std::string github_id;
  std::string blurb;
  std::string track = "10min_16mb";  // or non_record_16mb
  std::vector<std::string> against;  // scores of the record to beat (run folders, logs, numbers)
  double min_improvement = 0.005;    // nats of val_loss
  std::filesystem::path source_dir;  // the pgolf checkout to copy; empty: none
  bool overwrite = false;
};

// One checked statement of the record (README "Size and legality").
struct Statement {
  bool ok = false;
  std::string text;
};
std::vector<Statement> legality_statements(const std::vector<RunRecord>& runs);

// Writes the folder; fails if it exists and is not empty (unless overwrite)
// or if a run did not finish.
void write_record_folder(const std::vector<RunRecord>& runs, const SubmitOptions& options);

// The challenge's sp1024 tokenizer (fineweb_1024_bpe.model), by its SHA-256.
inline constexpr const char* kOfficialSp1024Sha256 =
    "4f5e8adb109c66b4886963bc75a7befd73bda36d27fd7102df8e9e66503b0e2a";

}  // namespace pgolf
