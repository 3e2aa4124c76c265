#include "workflow/stats.h"

#include <cmath>
#include <limits>

#include "common/error.h"

namespace pgolf {
namespace {

// The continued fraction of I_x(a, b) (converges fast for x < (a+1)/(a+b+2)),
// evaluated by the modified Lentz method.
double beta_continued_fraction(double a, double b, double x) {
  constexpr double kTiny = 1e-300;
  constexpr double kEps = 1e-15;
  auto guard = [](double v) { return std::abs(v) < kTiny ? kTiny : v; };
  double c = 1.0;
  double d = 1.0 / guard(1.0 - (a + b) * x / (a + 1.0));
  double h = d;
  for (int m = 1; m <= 10000; ++m) {
    const double even = m * (b - m) * x / ((a + 2.0 * m - 1.0) * (a + 2.0 * m));
    d = 1.0 / guard(1.0 + even * d);
    c = guard(1.0 + even / c);
    h *= d * c;
    const double odd = -(a + m) * (a + b + m) * x / ((a + 2.0 * m) * (a + 2.0 * m + 1.0));
    d = 1.0 / guard(1.0 + odd * d);
    c = guard(1.0 + odd / c);
    const double step = d * c;
    h *= step;
    if (std::abs(step - 1.0) < kEps) return h;
  }
  fail("incomplete beta: no convergence for a={} b={} x={}", a, b, x);
}

}  // namespace

SampleStats sample_stats(std::span<const double> values) {
  SampleStats s;
  s.n = static_cast<int64_t>(values.size());
  if (s.n == 0) return s;
  for (double v : values) s.mean += v;
  s.mean /= static_cast<double>(s.n);
  if (s.n < 2) return s;
  double squares = 0;
  for (double v : values) squares += (v - s.mean) * (v - s.mean);
  s.std = std::sqrt(squares / static_cast<double>(s.n - 1));
  return s;
}

double regularized_incomplete_beta(double a, double b, double x) {
  PGOLF_CHECK(a > 0 && b > 0 && x >= 0 && x <= 1, "incomplete beta: bad arguments a={} b={} x={}",
              a, b, x);
  if (x == 0 || x == 1) return x;
  // x^a (1-x)^b / (a B(a, b)), in logs to survive large a, b.
  const double log_front =
      std::lgamma(a + b) - std::lgamma(a) - std::lgamma(b) + a * std::log(x) + b * std::log1p(-x);
  if (x < (a + 1.0) / (a + b + 2.0)) {
    return std::exp(log_front) * beta_continued_fraction(a, b, x) / a;
  }
  // The symmetry I_x(a, b) = 1 - I_{1-x}(b, a) keeps the fraction in its fast region.
  return 1.0 - std::exp(log_front) * beta_continued_fraction(b, a, 1.0 - x) / b;
}

double student_t_cdf(double t, double df) {
  PGOLF_CHECK(df > 0, "Student t: degrees of freedom must be > 0, got {}", df);
  if (std::isinf(t)) return t > 0 ? 1.0 : 0.0;
  // P(|T| > |t|) = I_{df/(df+t^2)}(df/2, 1/2).
  const double two_tail = regularized_incomplete_beta(df / 2.0, 0.5, df / (df + t * t));
  return t > 0 ? 1.0 - two_tail / 2.0 : two_tail / 2.0;
}

ImprovementTest test_improvement(std::span<const double> candidate,
                                 std::span<const double> baseline, double threshold) {
  ImprovementTest r;
  r.candidate = sample_stats(candidate);
  r.baseline = sample_stats(baseline);
  r.threshold = threshold;
  PGOLF_CHECK(r.candidate.n >= 1 && r.baseline.n >= 1,
              "compare: need at least one value on each side");
  PGOLF_CHECK(r.candidate.n >= 2 || r.baseline.n >= 2,
              "compare: one run against one run has no spread to test; run more seeds "
              "(`pgolf sweep --seeds ...`)");
  r.improvement = r.baseline.mean - r.candidate.mean;
  const auto n_c = static_cast<double>(r.candidate.n);
  const auto n_b = static_cast<double>(r.baseline.n);
  // A side of one value contributes no variance (and no degrees of freedom).
  const double v_c = r.candidate.n >= 2 ? r.candidate.std * r.candidate.std / n_c : 0.0;
  const double v_b = r.baseline.n >= 2 ? r.baseline.std * r.baseline.std / n_b : 0.0;
  const bool welch = r.candidate.n >= 2 && r.baseline.n >= 2;
  r.method = welch ? "welch" : "one-sample";
  const double se = std::sqrt(v_c + v_b);
  const double margin = r.improvement - threshold;
  if (se == 0) {  // identical values: the improvement is known exactly
    r.t = margin > 0 ? std::numeric_limits<double>::infinity()
                     : -std::numeric_limits<double>::infinity();
    r.df = welch ? n_c + n_b - 2 : std::max(n_c, n_b) - 1;
    r.p_value = margin > 0 ? 0.0 : 1.0;
    return r;
  }
  r.t = margin / se;
  if (welch) {
    r.df = (v_c + v_b) * (v_c + v_b) / (v_c * v_c / (n_c - 1) + v_b * v_b / (n_b - 1));
  } else {
    r.df = (r.candidate.n >= 2 ? n_c : n_b) - 1;
  }
  r.p_value = student_t_cdf(-r.t, r.df);  // P(T >= t), without 1 - x cancellation
  return r;
}

}  // namespace pgolf
