// Signals under the shim: the signal probe (probe_signals.cpp) and two real
// python3 programs run unpatched and under LD_PRELOAD with 1 and 2 hubs; the
// output and exit status must be identical, and the patched run must show
// the shim active.
#include <gtest/gtest.h>

#include <signal.h>

#include "../common/env.hpp"
#include "probe_cases.hpp"

using namespace green::test;

namespace {

const std::vector<std::string> kCases = {"interrupt_no_restart", "interrupt_restart", "sigwait_server",
                                         "signalfd_server", "blocked_pending", "thread_masks",
                                         "pthread_kill_parked", "pthread_kill_main", "sigchld_waitpid", "sigpipe_ignored",
                                         "sigpipe_handler", "sigpipe_default", "child_masks", "setxid",
                                         "default_terminate"};

// Listed by the probe, checked patched-only below (unpatched the process
// has no other OS thread).
const std::string kPatchedOnly = "os_thread_masks";

int expected_status(const std::string& name) {
    if (name == "sigpipe_default") return 128 + SIGPIPE;
    if (name == "default_terminate") return 128 + SIGTERM;
    return 0;
}

std::vector<std::string> patched_env(const std::string& hubs) {
    return {preload_env(), "GREEN_STATS=1", "GREEN_HUBS=" + hubs};
}

TEST(SignalsSetup, EveryProbeCaseIsTested) {
    std::vector<std::string> want;
    for (const auto& c : kCases) {
        want.push_back(c);
        if (c == "child_masks") want.push_back(kPatchedOnly);
    }
    EXPECT_EQ(probe_cases(env_or_die("GREEN_PROBE_SIGNALS")), lines(want));
}

// "<case>/<hubs>"
class SignalDifferential : public ::testing::TestWithParam<std::string> {};

TEST_P(SignalDifferential, PatchedMatchesUnpatched) {
    const std::string name = GetParam().substr(0, GetParam().find('/'));
    const std::string hubs = GetParam().substr(GetParam().find('/') + 1);
    const std::string probe = env_or_die("GREEN_PROBE_SIGNALS");
    auto plain = run_capture({probe, name});
    ASSERT_EQ(plain.status, expected_status(name)) << plain.out << plain.err;
    ASSERT_FALSE(plain.out.empty());
    auto patched = run_capture({probe, name}, patched_env(hubs));
    EXPECT_EQ(patched.status, plain.status) << patched.err;
    EXPECT_EQ(patched.out, plain.out) << patched.err;
    // A process killed by a signal prints no stats at exit.
    if (expected_status(name) == 0) {
        EXPECT_NE(patched.err.find("green: shim active"), std::string::npos) << patched.err;
    }
}

std::vector<std::string> all_cases() {
    std::vector<std::string> v;
    for (const auto& c : kCases)
        for (const char* hubs : {"1", "2"}) v.push_back(c + "/" + hubs);
    return v;
}

INSTANTIATE_TEST_SUITE_P(Cases, SignalDifferential, ::testing::ValuesIn(all_cases()), [](const auto& info) {
    std::string s = info.param;
    for (char& c : s)
        if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
    return s;
});

TEST(ShimThreads, NeverTakeASignalTheProgramBlocks) {
    for (const char* hubs : {"1", "3"}) {
        auto patched = run_capture({env_or_die("GREEN_PROBE_SIGNALS"), kPatchedOnly}, patched_env(hubs));
        ASSERT_EQ(patched.status, 0) << patched.err;
        EXPECT_EQ(patched.out, "other OS threads: some, taking SIGTERM: 0\n") << "GREEN_HUBS=" << hubs;
    }
}

// Real programs: python3's own signal handling (a C handler that flags the
// signal, EINTR bringing the main thread back to run the Python handler).
const char* const kPythonAlarm = R"(
import signal, socket
class Timeout(Exception): pass
def on_alarm(sig, frame): raise Timeout()
signal.signal(signal.SIGALRM, on_alarm)
a, b = socket.socketpair()
signal.alarm(1)
try:
    a.recv(10)
    print("recv returned")
except Timeout:
    print("recv timed out by signal.alarm")
)";

// serve_forever polls every poll_interval; an hour means only EINTR from
// the SIGINT can bring the main thread back in time.
const char* const kPythonServer = R"(
import os, signal, socket, socketserver, threading
class Echo(socketserver.StreamRequestHandler):
    def handle(self):
        self.wfile.write(b"echo " + self.rfile.readline())
class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
srv = Server(("127.0.0.1", 0), Echo)
port = srv.server_address[1]
def client():
    for i in range(3):
        with socket.create_connection(("127.0.0.1", port)) as c:
            c.sendall(b"hello %d\n" % i)
            print(c.makefile().readline().strip(), flush=True)
    os.kill(os.getpid(), signal.SIGINT)
threading.Thread(target=client, name="client").start()
try:
    srv.serve_forever(poll_interval=3600)
except KeyboardInterrupt:
    print("KeyboardInterrupt in", threading.current_thread().name, flush=True)
srv.server_close()
)";

class PythonSignals : public ::testing::TestWithParam<std::string> {};

TEST_P(PythonSignals, PatchedMatchesUnpatched) {
    const std::string name = GetParam().substr(0, GetParam().find('/'));
    const std::string hubs = GetParam().substr(GetParam().find('/') + 1);
    if (access("/usr/bin/python3", X_OK) != 0) GTEST_SKIP() << "python3 is not installed";
    const std::string script = name == "alarm_recv" ? kPythonAlarm : kPythonServer;
    auto plain = run_capture({"/usr/bin/python3", "-c", script});
    ASSERT_EQ(plain.status, 0) << plain.err;
    ASSERT_FALSE(plain.out.empty());
    auto patched = run_capture({"/usr/bin/python3", "-c", script}, patched_env(hubs));
    EXPECT_EQ(patched.status, plain.status) << patched.err;
    EXPECT_EQ(patched.out, plain.out) << patched.err;
    EXPECT_NE(patched.err.find("green: shim active"), std::string::npos) << patched.err;
}

INSTANTIATE_TEST_SUITE_P(Programs, PythonSignals,
                         ::testing::Values("alarm_recv/1", "alarm_recv/2", "threaded_server_sigint/1",
                                           "threaded_server_sigint/2"),
                         [](const auto& info) {
                             std::string s = info.param;
                             for (char& c : s)
                                 if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                             return s;
                         });

}  // namespace
