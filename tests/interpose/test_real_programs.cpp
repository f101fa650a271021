// Real programs nobody here wrote, unpatched vs under the shim, against a
// local server the test starts itself: curl, and Debian's python3 running a
// client that uses sockets with timeouts, time.sleep and DNS for localhost.
// And multi-threaded ones (pigz, xz -T4: pthread mutexes and condvars
// between worker threads), whose threads become fibers under the shim.
// The server is python3's http.server on an ephemeral port; the test learns
// the port from the line the server prints once it listens (no sleeps).
#include <gtest/gtest.h>

#include <fstream>
#include <regex>

#include "../common/child.hpp"
#include "../common/env.hpp"
#include "../common/server_child.hpp"

using namespace green::test;

namespace {

// python3's http.server serving hello.txt from a directory of its own.
class HttpServer {
public:
    HttpServer() : server_(command(dir_), {}, std::chrono::seconds(10), "port ") {}
    int port() const { return server_.port(); }

private:
    static std::vector<std::string> command(const TempDir& dir) {
        std::ofstream(dir / "hello.txt") << "hello from green\n";
        return {"/usr/bin/python3", "-u", "-m", "http.server", "0", "--bind", "127.0.0.1", "--directory",
                dir.path().string()};
    }
    TempDir dir_;
    ServerChild server_;
};

struct Program {
    const char* name;
    std::vector<std::string> (*argv)(int port);
};

const Program kPrograms[] = {
    {"curl_ok", [](int p) { return std::vector<std::string>{"curl", "-sS", "-w", "\\n%{http_code}\\n", "http://127.0.0.1:" + std::to_string(p) + "/hello.txt"}; }},
    {"curl_404", [](int p) { return std::vector<std::string>{"curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}\\n", "http://localhost:" + std::to_string(p) + "/missing"}; }},
    {"curl_refused", [](int) { return std::vector<std::string>{"curl", "-sS", "http://127.0.0.1:1/"}; }},
    {"python_client", [](int p) { return std::vector<std::string>{"/usr/bin/python3", env_or_die("GREEN_REAL_CLIENT"), std::to_string(p)}; }},
};

class RealProgram : public ::testing::TestWithParam<Program> {};

// A few MB of deterministic, moderately compressible text, written once and
// removed when the test program ends.
std::string make_input_file() {
    static const TempDir dir;
    static std::string path = [] {
        std::string text;
        std::uint64_t x = 88172645463325252ull;
        for (int line = 0; line < 60000; ++line) {
            for (int w = 0; w < 8; ++w) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                text += "word" + std::to_string(x % 5000) + ' ';
            }
            text += '\n';
        }
        std::ofstream(dir / "input.txt") << text;
        return dir / "input.txt";
    }();
    return path;
}

struct Compressor {
    const char* name;
    std::vector<std::string> argv;
    bool has_threads;  // spawns worker threads for this input
};

const Compressor kCompressors[] = {
    {"pigz_4_threads", {"pigz", "-p", "4", "-b", "128", "-c"}, true},
    // Small blocks so the input is cut into many and all four workers run.
    {"xz_4_threads", {"xz", "-T4", "-1", "--block-size=262144", "-c"}, true},
};

class ThreadedProgram : public ::testing::TestWithParam<Compressor> {};

TEST_P(ThreadedProgram, SameBytesPatchedAndUnpatchedWithThreadsAsFibers) {
    auto argv = GetParam().argv;
    argv.push_back(make_input_file());
    auto plain = run_capture(argv);
    auto patched = run_capture(argv, {preload_env(), "GREEN_STATS=1"});
    ASSERT_EQ(plain.status, 0) << plain.err;
    EXPECT_EQ(patched.status, 0) << patched.err;
    ASSERT_GT(plain.out.size(), 1000u);
    EXPECT_TRUE(patched.out == plain.out) << "compressed output differs (" << patched.out.size() << " vs "
                                           << plain.out.size() << " bytes)";
    // The stats go to a copy of stderr taken at start, so they survive
    // xz closing fd 2 in its own exit handler.
    EXPECT_NE(patched.err.find("green: shim active"), std::string::npos) << patched.err;
    if (GetParam().has_threads) {
        std::smatch m;
        ASSERT_TRUE(std::regex_search(patched.err, m, std::regex("fibers spawned ([0-9]+)"))) << patched.err;
        EXPECT_GE(std::stoi(m[1]), 4) << "worker threads did not become fibers";
    }
}

INSTANTIATE_TEST_SUITE_P(Programs, ThreadedProgram, ::testing::ValuesIn(kCompressors),
                         [](const auto& info) { return std::string(info.param.name); });

TEST_P(RealProgram, SameOutputPatchedAndUnpatched) {
    HttpServer server;
    ASSERT_GT(server.port(), 0) << "http.server did not report its port";
    auto argv = GetParam().argv(server.port());
    auto plain = run_capture(argv);
    auto patched = run_capture(argv, {preload_env(), "GREEN_STATS=1"});
    EXPECT_EQ(patched.status, plain.status);
    EXPECT_EQ(patched.out, plain.out);
    ASSERT_FALSE(plain.out.empty() && plain.err.empty());
    EXPECT_NE(patched.err.find("green: shim active"), std::string::npos) << patched.err;
    if (std::string(GetParam().name) == "curl_refused") {
        EXPECT_EQ(plain.status, 7);  // curl: failed to connect
    } else {
        EXPECT_EQ(plain.status, 0) << plain.err;
    }
}

INSTANTIATE_TEST_SUITE_P(Programs, RealProgram, ::testing::ValuesIn(kPrograms),
                         [](const auto& info) { return std::string(info.param.name); });

// Programs that hand the shim's fds to children: pipes and sockets a child
// inherits must be exactly what the parent asked for (blocking), or the
// child sees EAGAIN where it never expects one. (The sleeps are part of the
// pipelines under test, the reader starting late, not synchronisation.)
struct Pipeline {
    const char* name;
    std::vector<std::string> argv;
};

const char* const kPythonSubprocess =
    "import subprocess\n"
    "ok = sum(subprocess.check_output(['echo', 'hi']) == b'hi\\n' for _ in range(100))\n"
    "ran = sum(subprocess.run(['cat'], input=b'x' * 70000, capture_output=True).stdout == b'x' * 70000 for _ in range(20))\n"
    "print('check_output', ok, 'run', ran)\n";

const char* const kPythonWc =
    "import subprocess\n"
    "p = subprocess.Popen(['wc', '-c'], stdin=subprocess.PIPE, stdout=subprocess.PIPE)\n"
    "out, _ = p.communicate(b'y' * 3000000)\n"
    "print(out.decode().strip(), p.returncode)\n";

const Pipeline kPipelines[] = {
    {"seq_to_late_wc", {"bash", "-c", "seq 1 200000 | (sleep 0.2; wc -l)"}},
    {"sleep_to_cat", {"bash", "-c", "sleep 0.2 | cat; echo status ${PIPESTATUS[*]}"}},
    {"head_to_wc", {"bash", "-c", "head -c 3000000 /dev/zero | wc -c"}},
    {"exec_fd3", {"bash", "-c", "exec 3>/dev/null 4>/dev/null 5>/dev/null; echo to3 >&3; seq 3 | wc -l"}},
    {"python_subprocess_100x", {"/usr/bin/python3", "-c", kPythonSubprocess}},
    {"python_writes_to_wc", {"/usr/bin/python3", "-c", kPythonWc}},
};

class ChildrenOfPatchedPrograms : public ::testing::TestWithParam<std::tuple<Pipeline, int>> {};

TEST_P(ChildrenOfPatchedPrograms, SameOutputAndStatus) {
    const auto& [pipeline, hubs] = GetParam();
    auto plain = run_capture(pipeline.argv);
    auto patched = run_capture(pipeline.argv, {preload_env(), "GREEN_HUBS=" + std::to_string(hubs)});
    ASSERT_EQ(plain.status, 0) << plain.err;
    ASSERT_FALSE(plain.out.empty());
    EXPECT_EQ(patched.status, plain.status) << patched.err;
    EXPECT_EQ(patched.out, plain.out) << patched.err;
    EXPECT_EQ(patched.err, plain.err);
}

INSTANTIATE_TEST_SUITE_P(Pipelines, ChildrenOfPatchedPrograms,
                         ::testing::Combine(::testing::ValuesIn(kPipelines), ::testing::Values(1, 2)),
                         [](const auto& info) {
                             return std::string(std::get<0>(info.param).name) + "_hubs" +
                                    std::to_string(std::get<1>(info.param));
                         });

}  // namespace
