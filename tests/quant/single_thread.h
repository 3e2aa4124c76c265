// A test fixture that runs each test on one intra-op thread. The quantizers
// issue many small tensor ops (GPTQ's column loop, per-row searches); on a
// busy 2-core machine the OpenMP/BLAS threads of those ops wait on each
// other, and a test that takes 2 s alone took 60 s beside a compiler. One
// thread changes no result checked here (the matrices are small).
#pragma once

#include <ATen/Parallel.h>
#include <gtest/gtest.h>

namespace pgolf::testing {

class SingleThreadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    threads_ = at::get_num_threads();
    at::set_num_threads(1);
  }
  void TearDown() override { at::set_num_threads(threads_); }

 private:
  int threads_ = 1;
};

}  // namespace pgolf::testing
