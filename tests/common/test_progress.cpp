// Progress: the latest loss stays on the line, and byte counts read as sizes.
#include <gtest/gtest.h>

#include <cstdio>
#include <functional>
#include <string>

#include "common/progress.h"

namespace pgolf {
namespace {

std::string run_plain(const std::function<void(Progress&)>& body, Progress::Options options) {
  std::FILE* out = std::tmpfile();
  options.out = out;
  options.quiet = true;
  options.interval_s = 0.0;
  {
    Progress progress("train", 100, "steps", options);
    body(progress);
  }
  std::rewind(out);
  std::string text(8192, '\0');
  text.resize(std::fread(text.data(), 1, text.size(), out));
  std::fclose(out);
  return text;
}

TEST(Progress, TheLatestExtraStaysUntilReplaced) {
  const std::string text = run_plain(
      [](Progress& p) {
        p.update(10, "loss 4.2000");
        p.update(11);  // a step that logged no loss
        p.update(20, "loss 3.9000");
        p.message("a note");
        p.finish();
      },
      {});
  EXPECT_NE(text.find("train: 11/100 steps (11.0%)"), std::string::npos) << text;
  EXPECT_NE(text.find("11.0%), "), std::string::npos);
  const size_t line11 = text.find("train: 11/100");
  EXPECT_NE(text.find("loss 4.2000", line11), std::string::npos) << text;
  EXPECT_NE(text.find("ETA "), std::string::npos) << text;
  EXPECT_NE(text.find("loss 3.9000"), std::string::npos) << text;
  EXPECT_NE(text.find("\na note\n"), std::string::npos) << text;
}

TEST(Progress, ByteCountsAreSizes) {
  Progress::Options options;
  options.bytes = true;
  const std::string text = run_plain(
      [](Progress& p) {
        p.set_total(3'000'000);
        p.update(1'500'000);
        p.finish("resumed");
      },
      options);
  EXPECT_NE(text.find("train: 1.5 MB/3.0 MB (50.0%)"), std::string::npos) << text;
  EXPECT_NE(text.find("/s"), std::string::npos) << text;
  EXPECT_NE(text.find("train: 1.5 MB in "), std::string::npos) << text;
  EXPECT_EQ(format_bytes(999), "999 B");
  EXPECT_EQ(format_bytes(12'345), "12.3 kB");
  EXPECT_EQ(format_bytes(2.5e9), "2.50 GB");
}

}  // namespace
}  // namespace pgolf
