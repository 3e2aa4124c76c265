// The statistics behind `pgolf compare`: the challenge accepts a new record
// only if it beats the old one by at least 0.005 nats of val_loss at p < 0.01
// over seeds. That is a one-sided Welch t-test of
//   H0: mean(baseline) - mean(candidate) <= threshold
// against the alternative that the improvement exceeds the threshold. The
// Student t CDF comes from the regularized incomplete beta function, computed
// here (Lentz's continued fraction) rather than pulling in a numerics library.
#pragma once

#include <span>
#include <string>

namespace pgolf {

struct SampleStats {
  int64_t n = 0;
  double mean = 0;
  double std = 0;  // sample standard deviation (n - 1); 0 when n < 2
};
SampleStats sample_stats(std::span<const double> values);

// I_x(a, b) for a, b > 0 and 0 <= x <= 1.
double regularized_incomplete_beta(double a, double b, double x);
// P(T <= t) for Student's t with `df` > 0 degrees of freedom (df need not be an integer).
double student_t_cdf(double t, double df);

struct ImprovementTest {
  SampleStats candidate, baseline;
  double improvement = 0;  // mean(baseline) - mean(candidate): > 0 is better (lower loss)
  double threshold = 0;
  double t = 0;        // (improvement - threshold) / standard error
  double df = 0;       // Welch–Satterthwaite degrees of freedom
  double p_value = 1;  // P(T >= t) under H0: the one-sided p-value
  // "welch" (both sides have >= 2 values), or "one-sample" (one side is a
  // single value, taken as exact: the test uses the other side's spread).
  std::string method;
};

// Fails unless at least one side has two or more values.
ImprovementTest test_improvement(std::span<const double> candidate,
                                 std::span<const double> baseline, double threshold);

}  // namespace pgolf
