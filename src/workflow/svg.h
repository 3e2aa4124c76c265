// Charts as inline SVG text, for pages that must open with no network and no
// script: line charts (several series over one pair of axes, e.g. runs
// overlaid) and stacked horizontal bars (time per phase, bytes per group).
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pgolf {

struct Series {
  std::string label;
  std::string color;                              // any CSS color
  std::vector<std::pair<double, double>> points;  // (x, y), x ascending
  bool markers = false;                           // dots at the points (sparse series)
};

struct ChartSpec {
  std::string title;
  std::string x_label;
  std::string y_label;
  int width = 460;
  int height = 300;
};

std::string line_chart_svg(const ChartSpec& spec, const std::vector<Series>& series);

struct BarRow {
  std::string label;
  std::vector<double> values;  // one per segment, in segment order
};

// One bar per row, its segments stacked left to right; `segments` names them
// (legend) and `colors` colours them.
std::string stacked_bar_svg(const ChartSpec& spec, const std::vector<std::string>& segments,
                            const std::vector<std::string>& colors, const std::vector<BarRow>& rows,
                            std::string_view unit);

// A distinct colour per index (runs, segments).
std::string palette(size_t index);

// &, <, >, " and ' as entities, for text inside HTML or SVG.
std::string xml_escape(std::string_view text);

// "1.5k", "2.1M", "0.0032": short tick labels.
std::string compact_number(double value);

}  // namespace pgolf
