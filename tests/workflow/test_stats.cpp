// The t-test behind `pgolf compare` against SciPy 1.x (values computed with
// scipy.stats.t.cdf, scipy.special.betainc, scipy.stats.ttest_ind(equal_var=False)
// and ttest_1samp, alternative one-sided) and closed forms.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "tests/test_util.h"
#include "workflow/stats.h"

namespace pgolf {
namespace {

TEST(Stats, IncompleteBetaMatchesScipy) {
  EXPECT_NEAR(regularized_incomplete_beta(2, 3, 0.4), 0.5248, 1e-13);
  EXPECT_NEAR(regularized_incomplete_beta(0.5, 0.5, 0.1), 0.20483276469913345, 1e-13);
  EXPECT_NEAR(regularized_incomplete_beta(10, 0.5, 0.95), 0.31715157546554495, 1e-12);
  EXPECT_NEAR(regularized_incomplete_beta(50, 60, 0.45), 0.4642352914306031, 1e-12);
  EXPECT_EQ(regularized_incomplete_beta(3, 4, 0), 0);
  EXPECT_EQ(regularized_incomplete_beta(3, 4, 1), 1);
  EXPECT_PGOLF_ERROR(regularized_incomplete_beta(-1, 1, 0.5), "bad arguments");
}

TEST(Stats, StudentTCdfMatchesScipyAndClosedForms) {
  EXPECT_NEAR(student_t_cdf(2.228138851986, 10), 0.975, 1e-12);  // the textbook 97.5% point
  EXPECT_NEAR(student_t_cdf(1.0, 1), 0.75, 1e-14);               // Cauchy
  EXPECT_NEAR(student_t_cdf(-0.5, 3.5), 0.32342521966127546, 1e-12);
  EXPECT_NEAR(student_t_cdf(3.0, 2.2), 0.9574896550872933, 1e-12);
  EXPECT_NEAR(student_t_cdf(0.1, 30), 0.5394951941048645, 1e-12);
  EXPECT_NEAR(student_t_cdf(-4.0, 7), 0.0025949566746484064, 1e-14);
  EXPECT_NEAR(student_t_cdf(12.0, 4), 0.9998617857257485, 1e-13);
  EXPECT_EQ(student_t_cdf(0.0, 5), 0.5);
  // df = 2 has a closed form: 1/2 + t / (2 sqrt(2 + t^2)).
  for (double t : {-3.0, -0.7, 0.2, 1.9}) {
    EXPECT_NEAR(student_t_cdf(t, 2), 0.5 + t / (2 * std::sqrt(2 + t * t)), 1e-13) << t;
  }
  EXPECT_PGOLF_ERROR(student_t_cdf(1, 0), "degrees of freedom");
}

TEST(Stats, WelchOneSidedMatchesScipy) {
  const std::vector<double> candidate = {2.0101, 2.0123, 2.0098};
  const std::vector<double> baseline = {2.0201, 2.0187, 2.0222};
  const ImprovementTest t = test_improvement(candidate, baseline, 0.005);
  EXPECT_EQ(t.method, "welch");
  EXPECT_NEAR(t.t, 3.5750815450410576, 1e-9);
  EXPECT_NEAR(t.df, 3.7653000825955, 1e-9);
  EXPECT_NEAR(t.p_value, 0.012874281463903597, 1e-10);
  EXPECT_NEAR(t.improvement, (2.0201 + 2.0187 + 2.0222 - 2.0101 - 2.0123 - 2.0098) / 3, 1e-12);
  EXPECT_NEAR(t.candidate.std, 0.0013650396819630652, 1e-12);
}

TEST(Stats, OneSampleAgainstASingleRecordValue) {
  const std::vector<double> candidate = {2.0101, 2.0123, 2.0098};
  const std::vector<double> record = {2.0727};
  const ImprovementTest t = test_improvement(candidate, record, 0.005);
  EXPECT_EQ(t.method, "one-sample");
  EXPECT_NEAR(t.t, 72.28299829541356, 1e-8);
  EXPECT_EQ(t.df, 2);
  EXPECT_NEAR(t.p_value, 9.566939483322756e-05, 1e-12);
  // No improvement at all: p near 1.
  const std::vector<double> worse = {2.10, 2.11, 2.12};
  EXPECT_GT(test_improvement(worse, record, 0.005).p_value, 0.99);
}

TEST(Stats, DegenerateInputs) {
  const std::vector<double> one = {2.0};
  EXPECT_PGOLF_ERROR(test_improvement(one, one, 0.005), "no spread");
  const std::vector<double> same = {2.0, 2.0};
  const std::vector<double> higher = {2.1, 2.1};
  EXPECT_EQ(test_improvement(same, higher, 0.005).p_value, 0.0);  // exactly 0.1 better
  EXPECT_EQ(test_improvement(higher, same, 0.005).p_value, 1.0);
  const SampleStats s = sample_stats(one);
  EXPECT_EQ(s.n, 1);
  EXPECT_EQ(s.std, 0);
}

}  // namespace
}  // namespace pgolf
