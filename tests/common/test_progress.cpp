// Progress: the latest loss stays on the line, and byte counts read as sizes.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <functional>
#include <string>
#include <thread>

#include "common/format.h"
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

// A log line printed while the live line is on screen erases it first, and
// the next update draws it again below the log line.
TEST(Progress, LogLinesEraseTheLiveLine) {
  std::FILE* out = std::tmpfile();
  {
    Progress::Options options;
    options.out = out;
    options.force_live = true;
    Progress progress("train", 100, "steps", options);
    std::this_thread::sleep_for(std::chrono::milliseconds(120));  // past the redraw limit
    progress.update(10);
    print_line(out, "step:10 train_loss:4.0");
    print_line(out, "step:11 train_loss:3.9");  // nothing left to erase
    std::this_thread::sleep_for(std::chrono::milliseconds(120));
    progress.update(20);
    progress.finish();
  }
  std::rewind(out);
  std::string text(8192, '\0');
  text.resize(std::fread(text.data(), 1, text.size(), out));
  std::fclose(out);
  const std::string erase = "\r\x1b[K";
  const size_t live = text.find(erase + "train: 10/100");
  const size_t log = text.find(erase + "step:10 train_loss:4.0\n");
  ASSERT_NE(live, std::string::npos) << text;
  ASSERT_NE(log, std::string::npos) << text;
  EXPECT_LT(live, log);
  EXPECT_NE(text.find("\nstep:11 train_loss:3.9\n"), std::string::npos) << text;
  EXPECT_NE(text.find(erase + "train: 20/100", log), std::string::npos) << text;
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
