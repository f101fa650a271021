// greenrun: option parsing, GREEN_* mapping and validation, refusals
// (static, setuid, not found), exit status passthrough, and finding the shim
// next to the binary in a build tree and in an installed layout.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "../common/child.hpp"
#include "../common/env.hpp"

using namespace green::test;
namespace fs = std::filesystem;

namespace {

std::string greenrun() { return env_or_die("GREEN_GREENRUN"); }
std::string preload() { return fs::canonical(env_or_die("GREEN_PRELOAD")).string(); }

bool has(const std::string& text, const std::string& what) { return text.find(what) != std::string::npos; }

// A file `name` in `dir` holding `text`, executable by its owner; its path.
std::string executable(const TempDir& dir, const std::string& name, const std::string& text) {
    const std::string path = dir / name;
    std::ofstream(path) << text;
    fs::permissions(path, fs::perms::owner_all);
    return path;
}

TEST(Greenrun, HelpDocumentsEveryOptionAndItsVariable) {
    auto c = run_capture({greenrun(), "--help"});
    EXPECT_EQ(c.status, 0);
    for (const char* s : {"--hubs", "GREEN_HUBS", "--stack-size", "GREEN_STACK_SIZE", "--pool-size", "GREEN_POOL_SIZE",
                          "--stack-guard", "GREEN_STACK_GUARD", "--stats", "GREEN_STATS", "--check", "--preload",
                          "Exit status"})
        EXPECT_TRUE(has(c.out, s)) << s << " missing from --help:\n" << c.out;
}

TEST(Greenrun, OptionsBecomeGreenVariablesAndTheShimIsPreloaded) {
    auto c = run_capture({greenrun(), "--hubs", "1", "--stack-size", "128K", "--pool-size", "4", "--stack-guard", "off",
                          "--stats", "--", "/usr/bin/env"});
    EXPECT_EQ(c.status, 0) << c.err;
    for (const char* s : {"GREEN_HUBS=1\n", "GREEN_STACK_SIZE=128K\n", "GREEN_POOL_SIZE=4\n", "GREEN_STACK_GUARD=off\n",
                          "GREEN_STATS=1\n"})
        EXPECT_TRUE(has(c.out, s)) << s << " not in the program's environment:\n" << c.out;
    EXPECT_TRUE(has(c.out, "LD_PRELOAD=" + preload() + "\n")) << c.out;
    // (env itself closes stderr at exit before the shim's report, so the
    // report is checked on another program.)
    auto stats = run_capture({greenrun(), "--stats", "--", "/bin/true"});
    EXPECT_EQ(stats.status, 0);
    EXPECT_TRUE(has(stats.err, "green: shim active")) << "--stats must show the shim ran:\n" << stats.err;
}

TEST(Greenrun, ProgramArgumentsAreNotParsedAndDashDashIsOptional) {
    // Without "--", the program starts at the first word that is not an option
    // or an option's value; what follows belongs to the program.
    auto c = run_capture({greenrun(), "--hubs", "1", "/bin/sh", "-c", "echo \"$@\"", "sh", "--hubs", "5", "--check"});
    EXPECT_EQ(c.status, 0) << c.err;
    EXPECT_EQ(c.out, "--hubs 5 --check\n");
}

TEST(Greenrun, ExitStatusIsTheProgramsOwn) {
    EXPECT_EQ(run_capture({greenrun(), "--", "/bin/sh", "-c", "exit 7"}).status, 7);
    EXPECT_EQ(run_capture({greenrun(), "--", "/bin/true"}).status, 0);
    EXPECT_EQ(run_capture({greenrun(), "--", "/bin/sh", "-c", "kill -TERM $$"}).status, 128 + SIGTERM);
    // Input reaches the program too.
    auto c = run_capture({greenrun(), "--", "/bin/cat"}, {}, "through the shim\n");
    EXPECT_EQ(c.status, 0) << c.err;
    EXPECT_EQ(c.out, "through the shim\n");
}

TEST(Greenrun, BadValuesStopWithStatus2AndNameTheVariable) {
    struct Case {
        std::vector<std::string> args;
        std::vector<std::string> env;
        const char* variable;
    };
    const Case cases[] = {
        {{"--hubs", "0"}, {}, "GREEN_HUBS"},
        {{"--hubs", "many"}, {}, "GREEN_HUBS"},
        {{"--stack-size", "12Q"}, {}, "GREEN_STACK_SIZE"},
        {{"--pool-size", "0"}, {}, "GREEN_POOL_SIZE"},
        {{"--stack-guard", "maybe"}, {}, "GREEN_STACK_GUARD"},
        {{}, {"GREEN_STATS=yes"}, "GREEN_STATS"},  // from the environment, not an option
        {{}, {"GREEN_POOL_SIZE=-3"}, "GREEN_POOL_SIZE"},
    };
    for (const auto& k : cases) {
        std::vector<std::string> argv{greenrun()};
        argv.insert(argv.end(), k.args.begin(), k.args.end());
        argv.insert(argv.end(), {"--", "/bin/sh", "-c", "echo must-not-run"});
        auto c = run_capture(argv, k.env);
        EXPECT_EQ(c.status, 2) << k.variable;
        EXPECT_TRUE(has(c.err, k.variable)) << c.err;
        EXPECT_FALSE(has(c.out, "must-not-run"));
    }
}

TEST(Greenrun, UsageErrorsExit2) {
    auto unknown = run_capture({greenrun(), "--hbus", "2", "--", "/bin/true"});
    EXPECT_EQ(unknown.status, 2);
    EXPECT_TRUE(has(unknown.err, "--hbus")) << unknown.err;
    auto missing_value = run_capture({greenrun(), "--hubs"});
    EXPECT_EQ(missing_value.status, 2);
    auto no_program = run_capture({greenrun(), "--stats", "--"});
    EXPECT_EQ(no_program.status, 2);
    EXPECT_TRUE(has(no_program.err, "no program")) << no_program.err;
}

TEST(Greenrun, CheckSaysActiveForADynamicProgram) {
    auto c = run_capture({greenrun(), "--check", "--", "true"});  // found in PATH
    EXPECT_EQ(c.status, 0) << c.out << c.err;
    EXPECT_TRUE(has(c.out, "dynamically linked")) << c.out;
    EXPECT_TRUE(has(c.out, "shim:    " + preload())) << c.out;
    EXPECT_TRUE(has(c.out, "active:  yes")) << c.out;
}

TEST(Greenrun, StaticProgramIsRefused) {
    std::string prog = env_or_die("GREEN_STATIC_PROGRAM");
    if (prog == "none") GTEST_SKIP() << "no static libc to link a static program with";
    auto check = run_capture({greenrun(), "--check", "--", prog});
    EXPECT_EQ(check.status, 1);
    EXPECT_TRUE(has(check.out, "active:  no")) << check.out;
    EXPECT_TRUE(has(check.out, "statically linked")) << check.out;
    // Running it is refused too, rather than silently running it unpatched.
    auto run = run_capture({greenrun(), "--", prog});
    EXPECT_EQ(run.status, 126);
    EXPECT_TRUE(has(run.err, "statically linked")) << run.err;
    EXPECT_FALSE(has(run.out, "static program ran"));
    // The program itself works: the refusal is greenrun's.
    EXPECT_TRUE(has(run_capture({prog}).out, "static program ran"));
}

TEST(Greenrun, SetuidProgramThatChangesCredentialsIsRefused) {
    if (getuid() != 0) GTEST_SKIP() << "needs root to give a file to another user";
    TempDir dir;
    fs::path copy = dir.path() / "true-setuid";
    fs::copy_file("/bin/true", copy);
    ASSERT_EQ(chown(copy.c_str(), 65534, 65534), 0);
    ASSERT_EQ(chmod(copy.c_str(), 04755), 0);
    auto c = run_capture({greenrun(), "--check", "--", copy.string()});
    EXPECT_EQ(c.status, 1);
    EXPECT_TRUE(has(c.out, "setuid")) << c.out;
    EXPECT_TRUE(has(c.out, "secure mode")) << c.out;
    auto run = run_capture({greenrun(), "--", copy.string()});
    EXPECT_EQ(run.status, 126);

    // setgid to another group, same story.
    ASSERT_EQ(chmod(copy.c_str(), 02755), 0);
    auto g = run_capture({greenrun(), "--check", "--", copy.string()});
    EXPECT_EQ(g.status, 1);
    EXPECT_TRUE(has(g.out, "setgid")) << g.out;
}

TEST(Greenrun, ScriptsAreJudgedByTheirInterpreter) {
    TempDir dir;
    const std::string script = executable(dir, "hello.sh", "#!/bin/sh\necho script ran\n");
    auto c = run_capture({greenrun(), "--check", "--", script});
    EXPECT_EQ(c.status, 0) << c.out;
    EXPECT_TRUE(has(c.out, "a script run by /bin/sh")) << c.out;
    EXPECT_EQ(run_capture({greenrun(), "--", script}).out, "script ran\n");

    std::string prog = env_or_die("GREEN_STATIC_PROGRAM");
    if (prog == "none") return;
    auto s = run_capture({greenrun(), "--check", "--", executable(dir, "static.sh", "#!" + prog + "\n")});
    EXPECT_EQ(s.status, 1);
    EXPECT_TRUE(has(s.out, "statically linked")) << s.out;
}

// A script without #!: execvp (and so env, nice, timeout) runs it with
// /bin/sh; greenrun does the same, with the same output and status.
TEST(Greenrun, ScriptWithoutInterpreterLineRunsThroughSh) {
    TempDir dir;
    const std::string script = executable(dir, "plain-script", "echo \"sh script got $1 $2\"\nexit 3\n");
    auto plain = run_capture({"env", script, "a", "b c"});
    auto green = run_capture({greenrun(), "--", script, "a", "b c"});
    EXPECT_EQ(plain.out, "sh script got a b c\n");
    EXPECT_EQ(green.out, plain.out) << green.err;
    EXPECT_EQ(green.status, 3);
    EXPECT_EQ(plain.status, 3);
    auto c = run_capture({greenrun(), "--check", "--", script});
    EXPECT_EQ(c.status, 0) << c.out;
    EXPECT_TRUE(has(c.out, "no #! line, run by /bin/sh")) << c.out;
}

TEST(Greenrun, MissingOrNonExecutableProgram) {
    auto c = run_capture({greenrun(), "--", "no-such-program-green"});
    EXPECT_EQ(c.status, 127);
    EXPECT_TRUE(has(c.err, "not found")) << c.err;
    TempDir dir;
    fs::path plain = dir.path() / "data.txt";
    std::ofstream(plain) << "not a program\n";
    auto d = run_capture({greenrun(), "--", plain.string()});
    EXPECT_EQ(d.status, 126);
    EXPECT_TRUE(has(d.err, "not executable")) << d.err;
}

TEST(Greenrun, KeepsTheUsersOwnPreloadsAfterTheShim) {
    auto c = run_capture({greenrun(), "--", "/usr/bin/env"}, {"LD_PRELOAD=libm.so.6"});
    EXPECT_EQ(c.status, 0) << c.err;
    EXPECT_TRUE(has(c.out, "LD_PRELOAD=" + preload() + ":libm.so.6\n")) << c.out;
    auto twice = run_capture({greenrun(), "--", "/usr/bin/env"}, {"LD_PRELOAD=" + preload()});
    EXPECT_EQ(twice.status, 0) << twice.err;
    EXPECT_TRUE(has(twice.out, "LD_PRELOAD=" + preload() + "\n")) << twice.out;
}

// An installed layout: bin/greenrun and <libdir>/libgreen-preload.so, moved
// anywhere (DESTDIR). greenrun finds the library relative to itself.
TEST(Greenrun, FindsTheShimInAnInstalledLayoutOrSaysWhereItLooked) {
    TempDir dir;
    fs::create_directories(dir.path() / "bin");
    fs::path bin = dir.path() / "bin" / "greenrun";
    fs::copy_file(greenrun(), bin);
    auto missing = run_capture({bin.string(), "--check", "--", "/bin/true"});
    EXPECT_EQ(missing.status, 1);
    EXPECT_TRUE(has(missing.err, "cannot find libgreen-preload.so")) << missing.err;
    EXPECT_TRUE(has(missing.err, (dir.path() / "bin").string())) << "the places tried are listed:\n" << missing.err;

    fs::path libdir = dir.path() / "bin" / env_or_die("GREEN_BINDIR_TO_LIBDIR");
    fs::create_directories(libdir);
    fs::copy_file(preload(), libdir / "libgreen-preload.so");
    std::string installed = fs::canonical(libdir / "libgreen-preload.so").string();
    auto found = run_capture({bin.string(), "--check", "--", "/bin/true"});
    EXPECT_EQ(found.status, 0) << found.err;
    EXPECT_TRUE(has(found.out, "shim:    " + installed)) << found.out;
    auto ran = run_capture({bin.string(), "--stats", "--", "/bin/true"});
    EXPECT_EQ(ran.status, 0);
    EXPECT_TRUE(has(ran.err, "green: shim active")) << ran.err;

    // --preload overrides; a wrong one is an error, not a silent fallback.
    auto wrong = run_capture({bin.string(), "--preload", "/nonexistent/libgreen-preload.so", "--", "/bin/true"});
    EXPECT_EQ(wrong.status, 1);
    EXPECT_TRUE(has(wrong.err, "/nonexistent/libgreen-preload.so")) << wrong.err;
}

}  // namespace
