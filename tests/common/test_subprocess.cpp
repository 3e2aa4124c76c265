// Subprocess: the line protocol the peer benchmark speaks with its harness.
#include <gtest/gtest.h>

#include <fstream>

#include "common/subprocess.h"
#include "tests/test_util.h"

namespace pgolf {
namespace {

TEST(Subprocess, EchoesLinesThroughCat) {
  testing::ScratchDir dir;
  Subprocess child({"cat"}, dir / "err.log");
  ASSERT_TRUE(child.write_line("run eager 3"));
  EXPECT_EQ(child.read_line().value_or("<eof>"), "run eager 3");
  ASSERT_TRUE(child.write_line("{\"x\": 1}"));
  EXPECT_EQ(child.read_line().value_or("<eof>"), "{\"x\": 1}");
  EXPECT_EQ(child.wait(), 0);
}

TEST(Subprocess, ReportsExitCodeEndOfOutputAndStderr) {
  testing::ScratchDir dir;
  Subprocess child({"sh", "-c", "echo oops >&2; exit 3"}, dir / "err.log");
  EXPECT_FALSE(child.read_line().has_value());
  EXPECT_EQ(child.wait(), 3);
  std::ifstream in(dir / "err.log");
  std::string text;
  std::getline(in, text);
  EXPECT_EQ(text, "oops");
}

TEST(Subprocess, WritingToAnExitedChildFailsInsteadOfKilling) {
  testing::ScratchDir dir;
  Subprocess child({"true"}, dir / "err.log");
  EXPECT_FALSE(child.read_line().has_value());  // it has exited
  bool ok = true;
  for (int i = 0; i < 100 && ok; ++i) ok = child.write_line(std::string(4096, 'x'));
  EXPECT_FALSE(ok);
  EXPECT_EQ(child.wait(), 0);
}

TEST(Subprocess, MissingProgramIsAClearError) {
  testing::ScratchDir dir;
  // posix_spawnp fails in the parent (ENOENT) or the child exits 127.
  try {
    Subprocess child({"/nonexistent/pgolf-no-such-program"}, dir / "err.log");
    EXPECT_EQ(child.wait(), 127);
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cannot start"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace pgolf
