#include "workflow/svg.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

namespace pgolf {
namespace {

constexpr int kLeft = 62;  // room for the y tick labels and axis title
constexpr int kRight = 14;
constexpr int kTop = 30;     // the title
constexpr int kBottom = 44;  // x tick labels and axis title

struct Range {
  double lo = std::numeric_limits<double>::infinity();
  double hi = -std::numeric_limits<double>::infinity();
  void add(double v) {
    if (!std::isfinite(v)) return;
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  bool empty() const { return lo > hi; }
};

// A 1-2-5 step giving about `count` ticks over [lo, hi].
double nice_step(double lo, double hi, int count) {
  const double raw = (hi - lo) / count;
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0}) {
    if (m * magnitude >= raw) return m * magnitude;
  }
  return 10.0 * magnitude;
}

// Widens a range to whole steps (and a degenerate one to a unit around it).
Range padded(Range r) {
  if (r.empty()) return Range{0, 1};
  if (r.hi - r.lo < 1e-12 * std::max(1.0, std::abs(r.hi))) {
    const double pad = std::max(std::abs(r.hi) * 0.05, 1e-9);
    return Range{r.lo - pad, r.hi + pad};
  }
  const double step = nice_step(r.lo, r.hi, 5);
  return Range{std::floor(r.lo / step) * step, std::ceil(r.hi / step) * step};
}

std::string svg_open(const ChartSpec& spec) {
  return fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{1}\" viewBox=\"0 0 {0} "
      "{1}\" font-family=\"sans-serif\" font-size=\"11\">\n"
      "<rect width=\"{0}\" height=\"{1}\" fill=\"#fff\"/>\n"
      "<text x=\"{2}\" y=\"18\" text-anchor=\"middle\" font-size=\"13\" "
      "font-weight=\"bold\">{3}</text>\n",
      spec.width, spec.height, spec.width / 2, xml_escape(spec.title));
}

std::string no_data(const ChartSpec& spec) {
  return svg_open(spec) +
         fmt::format(
             "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"#888\">no data</text>\n"
             "</svg>\n",
             spec.width / 2, spec.height / 2);
}

std::string legend(const std::vector<std::pair<std::string, std::string>>& entries, int x, int y) {
  std::string out;
  for (size_t i = 0; i < entries.size(); ++i) {
    const int row_y = y + static_cast<int>(i) * 14;
    out += fmt::format(
        "<rect x=\"{}\" y=\"{}\" width=\"10\" height=\"10\" fill=\"{}\"/>"
        "<text x=\"{}\" y=\"{}\">{}</text>\n",
        x, row_y, entries[i].second, x + 14, row_y + 9, xml_escape(entries[i].first));
  }
  return out;
}

}  // namespace

std::string xml_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string compact_number(double v) {
  const double a = std::abs(v);
  if (a >= 1e9) return fmt::format("{:.3g}G", v / 1e9);
  if (a >= 1e6) return fmt::format("{:.3g}M", v / 1e6);
  if (a >= 1e4) return fmt::format("{:.3g}k", v / 1e3);
  if (a < 1e-12) return "0";
  return fmt::format("{:.4g}", v);
}

std::string palette(size_t index) {
  static const char* const kColors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                                        "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22"};
  return kColors[index % std::size(kColors)];
}

std::string line_chart_svg(const ChartSpec& spec, const std::vector<Series>& series) {
  Range xr, yr;
  for (const auto& s : series) {
    for (const auto& [x, y] : s.points) {
      xr.add(x);
      yr.add(y);
    }
  }
  if (xr.empty()) return no_data(spec);
  xr = padded(xr);
  yr = padded(yr);
  const int plot_w = spec.width - kLeft - kRight;
  const int plot_h = spec.height - kTop - kBottom;
  auto px = [&](double x) { return kLeft + (x - xr.lo) / (xr.hi - xr.lo) * plot_w; };
  auto py = [&](double y) { return kTop + plot_h - (y - yr.lo) / (yr.hi - yr.lo) * plot_h; };

  std::string out = svg_open(spec);
  // Grid and tick labels.
  for (const auto& [axis, range] : {std::pair{'x', xr}, std::pair{'y', yr}}) {
    const double step = nice_step(range.lo, range.hi, 5);
    for (double v = range.lo; v <= range.hi + step * 1e-6; v += step) {
      if (axis == 'x') {
        out += fmt::format(
            "<line x1=\"{0:.1f}\" y1=\"{1}\" x2=\"{0:.1f}\" y2=\"{2}\" stroke=\"#eee\"/>"
            "<text x=\"{0:.1f}\" y=\"{3}\" text-anchor=\"middle\">{4}</text>\n",
            px(v), kTop, kTop + plot_h, kTop + plot_h + 14, compact_number(v));
      } else {
        out += fmt::format(
            "<line x1=\"{1}\" y1=\"{0:.1f}\" x2=\"{2}\" y2=\"{0:.1f}\" stroke=\"#eee\"/>"
            "<text x=\"{3}\" y=\"{4:.1f}\" text-anchor=\"end\">{5}</text>\n",
            py(v), kLeft, kLeft + plot_w, kLeft - 4, py(v) + 4, compact_number(v));
      }
    }
  }
  out += fmt::format(
      "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#888\"/>\n", kLeft,
      kTop, plot_w, plot_h);
  out += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n",
                     kLeft + plot_w / 2, spec.height - 8, xml_escape(spec.x_label));
  out += fmt::format(
      "<text transform=\"translate(12,{}) rotate(-90)\" text-anchor=\"middle\">{}</text>\n",
      kTop + plot_h / 2, xml_escape(spec.y_label));
  // The series.
  std::vector<std::pair<std::string, std::string>> keys;
  for (const auto& s : series) {
    if (s.points.empty()) continue;
    std::string path;
    for (const auto& [x, y] : s.points) {
      if (!std::isfinite(y)) continue;
      path += fmt::format("{}{:.1f},{:.1f}", path.empty() ? "M" : " L", px(x), py(y));
      if (s.markers) {
        out += fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"2.5\" fill=\"{}\"/>\n", px(x),
                           py(y), s.color);
      }
    }
    out += fmt::format(
        "<path d=\"{}\" fill=\"none\" stroke=\"{}\" "
        "stroke-width=\"1.6\"><title>{}</title></path>\n",
        path, s.color, xml_escape(s.label));
    keys.emplace_back(s.label, s.color);
  }
  if (keys.size() > 1) out += legend(keys, kLeft + plot_w - 150, kTop + 6);
  return out + "</svg>\n";
}

std::string stacked_bar_svg(const ChartSpec& spec, const std::vector<std::string>& segments,
                            const std::vector<std::string>& colors, const std::vector<BarRow>& rows,
                            std::string_view unit) {
  double widest = 0;
  for (const auto& row : rows) {
    double sum = 0;
    for (double v : row.values) sum += std::max(v, 0.0);
    widest = std::max(widest, sum);
  }
  if (rows.empty() || widest <= 0) return no_data(spec);
  constexpr int kLabelW = 120;
  constexpr int kBarH = 18;
  const int legend_h = 14 * static_cast<int>(segments.size());
  const int plot_w = spec.width - kLabelW - kRight - 70;  // right: the total
  ChartSpec sized = spec;
  sized.height = kTop + static_cast<int>(rows.size()) * (kBarH + 8) + 10 + legend_h;
  std::string out = svg_open(sized);
  for (size_t r = 0; r < rows.size(); ++r) {
    const int y = kTop + static_cast<int>(r) * (kBarH + 8);
    out += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\n", kLabelW - 6,
                       y + 13, xml_escape(rows[r].label));
    double x = kLabelW;
    double sum = 0;
    for (size_t s = 0; s < rows[r].values.size() && s < segments.size(); ++s) {
      const double v = std::max(rows[r].values[s], 0.0);
      const double w = v / widest * plot_w;
      out += fmt::format(
          "<rect x=\"{:.1f}\" y=\"{}\" width=\"{:.1f}\" height=\"{}\" fill=\"{}\">"
          "<title>{}: {} {}</title></rect>\n",
          x, y, w, kBarH, colors[s % colors.size()], xml_escape(segments[s]), compact_number(v),
          xml_escape(unit));
      x += w;
      sum += v;
    }
    out += fmt::format("<text x=\"{:.1f}\" y=\"{}\">{} {}</text>\n", x + 4, y + 13,
                       compact_number(sum), xml_escape(unit));
  }
  std::vector<std::pair<std::string, std::string>> keys;
  for (size_t s = 0; s < segments.size(); ++s)
    keys.emplace_back(segments[s], colors[s % colors.size()]);
  out += legend(keys, kLabelW, kTop + static_cast<int>(rows.size()) * (kBarH + 8) + 6);
  return out + "</svg>\n";
}

}  // namespace pgolf
