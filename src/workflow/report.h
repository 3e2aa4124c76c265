// `pgolf report RUN [RUN...]`: one self-contained HTML page (inline SVG and
// CSS, no script, no network) about one or more runs, overlaid:
//   - the final table (steps, time, pre-export and round-trip scores, bytes)
//     and, for two or more finished runs, their mean and std
//   - train loss and val_bpb against steps, tokens and wall-clock time
//   - the schedules: Muon (matrix) learning rate and momentum per step
//   - time per phase, per run
//   - the artifact's bytes by tensor group, per run
#pragma once

#include <string>
#include <vector>

#include "workflow/run_record.h"

namespace pgolf {

struct ReportOptions {
  std::string title = "pgolf report";
};

std::string render_report(const std::vector<RunRecord>& runs, const ReportOptions& options = {});

}  // namespace pgolf
