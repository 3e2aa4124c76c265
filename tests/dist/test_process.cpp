// ChildProcess: the one spawner (the line protocol the peer benchmark speaks
// with its harness, inherited streams, exit codes).
#include <gtest/gtest.h>

#include <fstream>

#include "dist/process.h"
#include "tests/test_util.h"

namespace pgolf {
namespace {

SpawnOptions command(std::vector<std::string> argv) {
  SpawnOptions o;
  o.argv = std::move(argv);
  return o;
}

SpawnOptions piped(std::vector<std::string> argv, const std::filesystem::path& err) {
  SpawnOptions o;
  o.argv = std::move(argv);
  o.pipe_stdin = o.pipe_stdout = true;
  o.stderr_path = err;
  return o;
}

TEST(ChildProcess, EchoesLinesThroughCat) {
  testing::ScratchDir dir;
  ChildProcess child(piped({"cat"}, dir / "err.log"));
  ASSERT_TRUE(child.write_line("run eager 3"));
  EXPECT_EQ(child.read_line().value_or("<eof>"), "run eager 3");
  ASSERT_TRUE(child.write_line("{\"x\": 1}"));
  EXPECT_EQ(child.read_line().value_or("<eof>"), "{\"x\": 1}");
  EXPECT_EQ(child.wait(), 0);
}

TEST(ChildProcess, ReportsExitCodeEndOfOutputAndStderr) {
  testing::ScratchDir dir;
  ChildProcess child(piped({"sh", "-c", "echo oops >&2; exit 3"}, dir / "err.log"));
  EXPECT_FALSE(child.read_line().has_value());
  EXPECT_EQ(child.wait(), 3);
  std::ifstream in(dir / "err.log");
  std::string text;
  std::getline(in, text);
  EXPECT_EQ(text, "oops");
}

TEST(ChildProcess, WritingToAnExitedChildFailsInsteadOfKilling) {
  testing::ScratchDir dir;
  ChildProcess child(piped({"true"}, dir / "err.log"));
  EXPECT_FALSE(child.read_line().has_value());  // it has exited
  bool ok = true;
  for (int i = 0; i < 100 && ok; ++i) ok = child.write_line(std::string(4096, 'x'));
  EXPECT_FALSE(ok);
  EXPECT_EQ(child.wait(), 0);
}

TEST(ChildProcess, MissingProgramIsAClearError) {
  testing::ScratchDir dir;
  // A path that does not exist: the child cannot exec it and exits 127.
  try {
    ChildProcess child(piped({"/nonexistent/pgolf-no-such-program"}, dir / "err.log"));
    EXPECT_EQ(child.wait(), 127);
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cannot start"), std::string::npos) << e.what();
  }
}

TEST(ChildProcess, ProgramNotOnPathIsAClearError) {
  EXPECT_PGOLF_ERROR((void)ChildProcess(command({"pgolf-no-such-program"})), "not found on PATH");
}

TEST(ChildProcess, ExitCodesAndDescriptionsOfSignals) {
  ChildProcess child(command({"sh", "-c", "kill -9 $$"}));
  EXPECT_EQ(child.wait(), 128 + 9);
  EXPECT_NE(describe_exit(child.wait_status()).find("killed by signal 9"), std::string::npos);
  ChildProcess ok(command({"sh", "-c", "exit 4"}));
  EXPECT_EQ(ok.wait(), 4);
  EXPECT_EQ(describe_exit(ok.wait_status()), "exited with code 4");
}

TEST(ChildProcess, GivenEnvironmentReplacesOurs) {
  testing::ScratchDir dir;
  SpawnOptions o = piped({"sh", "-c", "echo \"$PGOLF_CHILD_PROBE\""}, dir / "err.log");
  o.env = std::vector<std::string>{"PGOLF_CHILD_PROBE=seen", "PATH=/usr/bin:/bin"};
  ChildProcess child(o);
  EXPECT_EQ(child.read_line().value_or("<eof>"), "seen");
  EXPECT_EQ(child.wait(), 0);
}

}  // namespace
}  // namespace pgolf
