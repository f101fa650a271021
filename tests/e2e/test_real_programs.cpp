// Unmodified Debian programs, unpatched and under the shim with one and two
// hubs: each scenario starts what it needs itself (loopback or a unix socket
// in a fresh temporary directory), reduces what the programs printed to the
// parts that do not depend on timing, and the three runs must agree. A
// program whose package is missing is a visible SKIP (scripts/deps.sh
// installs them all).
//
// What each one exercises under the shim: redis (jemalloc, its background
// threads made by libc's own pthread_create, redis-benchmark's event-loop
// threads), memcached (worker threads + libevent), nginx (epoll server),
// siege (a thread per simulated user, cancelled and joined at the end) against
// python3's http.server (a thread per connection), ssh-keygen (OpenSSL, key
// values read by atexit handlers), git clone/repack (pack threads, child
// processes) and a bash pipeline (fork/exec/wait).
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>

#include "../common/child.hpp"
#include "../common/env.hpp"
#include "../common/server_child.hpp"

using namespace green::test;

namespace {

bool have(const std::string& program) {
    return run_capture({"sh", "-c", "command -v " + program}).status == 0;
}

struct Mode {
    std::string name;
    std::vector<std::string> env;  // empty: unpatched
};

Mode mode_named(const std::string& m) {
    if (m == "unpatched") return {m, {}};
    std::vector<std::string> env = shim_env(m == "hubs2" ? 2 : 1);
    env.push_back("GREEN_STATS=1");
    return {m, env};
}

// Runs argv with the mode's environment; the shim must have been active in
// patched modes (its GREEN_STATS line), which is then removed from stderr.
Captured run_in(const Mode& m, const std::vector<std::string>& argv, const std::string& in = {}) {
    auto r = run_capture(argv, m.env, in);
    if (!m.env.empty()) {
        EXPECT_NE(r.err.find("green: shim active"), std::string::npos) << argv[0] << ": " << r.err;
    }
    return r;
}

std::string status_line(const std::string& what, const Captured& r) {
    return what + " exit " + std::to_string(r.status) + "\n";
}

// --- scenarios: each returns what must be equal in every mode ---------------

std::string redis(const Mode& m) {
    if (!have("redis-server") || !have("redis-benchmark")) return "SKIP redis-server/redis-benchmark not installed";
    TempDir dir;
    const std::string sock = dir / "redis.sock";
    ServerChild server({"redis-server", "--port", "0", "--unixsocket", sock, "--dir", dir.path().string(), "--save", "",
                        "--appendonly", "no", "--repl-diskless-sync-delay", "0"},
                       m.env, std::chrono::milliseconds(0));
    if (!server.wait_for_output("eady to accept connections", std::chrono::seconds(30)))
        return "redis-server did not start: " + server.output();
    std::string out;
    auto cli = [&](std::vector<std::string> args) {
        std::vector<std::string> argv = {"redis-cli", "-s", sock};
        argv.insert(argv.end(), args.begin(), args.end());
        auto r = run_in(m, argv);
        out += r.out + status_line("redis-cli", r);
    };
    cli({"set", "greeting", "hello"});
    cli({"get", "greeting"});
    // 2000 INCRs of one key from 20 connections, then from two client threads.
    auto b = run_in(m, {"redis-benchmark", "-s", sock, "-q", "-n", "2000", "-c", "20", "-t", "incr"});
    out += status_line("redis-benchmark", b);
    b = run_in(m, {"redis-benchmark", "-s", sock, "-q", "-n", "2000", "-c", "20", "-t", "incr", "--threads", "2"});
    out += status_line("redis-benchmark --threads 2", b);
    cli({"get", "counter:__rand_int__"});
    cli({"save"});
    // A fork while the server's threads run: the child streams a snapshot
    // (what BGSAVE does) to redis-cli, which returns when it has it all.
    auto rdb = run_in(m, {"redis-cli", "-s", sock, "--rdb", dir / "snapshot.rdb"});
    out += std::string("snapshot transferred: ") +
           ((rdb.out + rdb.err).find("Transfer finished with success") != std::string::npos ? "yes" : "no\n" + rdb.err) +
           "\n" + status_line("redis-cli --rdb", rdb);
    cli({"dbsize"});
    cli({"shutdown", "nosave"});
    out += "server exit " + std::to_string(server.wait_exit()) + "\n";
    return out;
}

std::string memcached(const Mode& m) {
    if (!have("memcached")) return "SKIP memcached not installed";
    TempDir dir;
    const std::string sock = dir / "mc.sock";
    ServerChild server({"memcached", "-u", "root", "-s", sock, "-t", "4", "-vv"}, m.env, std::chrono::milliseconds(0));
    if (!server.wait_for_output("server listening", std::chrono::seconds(30)))
        return "memcached did not start: " + server.output();
    // Twenty client threads, each setting, incrementing and reading its keys.
    const std::string client = R"(
import socket, sys, threading
path = sys.argv[1]
results = {}
def talk(i):
    s = socket.socket(socket.AF_UNIX)
    s.connect(path)
    f = s.makefile('rwb')
    out = []
    for k in range(20):
        key = 'k%d_%d' % (i, k)
        f.write(b'set %s 0 0 1\r\n1\r\n' % key.encode()); f.flush(); out.append(f.readline())
        f.write(b'incr %s %d\r\n' % (key.encode(), k)); f.flush(); out.append(f.readline())
        f.write(b'get %s\r\n' % key.encode()); f.flush()
        out += [f.readline(), f.readline(), f.readline()]
    results[i] = b''.join(out)
    s.close()
ts = [threading.Thread(target=talk, args=(i,)) for i in range(20)]
[t.start() for t in ts]; [t.join() for t in ts]
for i in sorted(results): sys.stdout.write(results[i].decode())
)";
    auto r = run_in(m, {"/usr/bin/python3", "-c", client, sock});
    return r.out + status_line("client", r);
}

std::string nginx(const Mode& m) {
    if (!have("nginx") || !have("curl")) return "SKIP nginx or curl not installed";
    TempDir dir;
    const std::string d = dir.path().string();
    std::ofstream(d + "/index.html") << "served by nginx\n";
    std::ofstream(d + "/nginx.conf") << "daemon off;\nmaster_process off;\nerror_log stderr notice;\npid " << d
                                     << "/nginx.pid;\nevents { worker_connections 256; }\nhttp {\n access_log off;\n"
                                     << " client_body_temp_path " << d << ";\n proxy_temp_path " << d
                                     << ";\n fastcgi_temp_path " << d << ";\n uwsgi_temp_path " << d
                                     << ";\n scgi_temp_path " << d << ";\n server { listen unix:" << d
                                     << "/sock; root " << d << "; }\n}\n";
    ServerChild server({"nginx", "-c", d + "/nginx.conf", "-e", "stderr"}, m.env, std::chrono::milliseconds(0));
    // Printed once the listening socket is open.
    if (!server.wait_for_output("getrlimit(RLIMIT_NOFILE)", std::chrono::seconds(30)))
        return "nginx did not start: " + server.output();
    std::string out;
    for (const char* path : {"/index.html", "/missing"}) {
        auto r = run_in(m, {"curl", "-s", "-w", " %{http_code}\n", "--unix-socket", d + "/sock",
                            std::string("http://localhost") + path});
        out += std::regex_replace(r.out, std::regex("nginx/[0-9.]+"), "nginx") + status_line("curl", r);
    }
    return out;
}

// siege against python3's http.server, both in the same mode. -r bounds the
// run by repetitions (a transaction count known in advance); -t ends it by
// time, cancelling the user threads (pthread_cancel) and joining them.
std::string siege_http(const Mode& m) {
    if (!have("siege")) return "SKIP siege not installed";
    TempDir dir;
    std::ofstream(dir / "hello.txt") << "hello from green\n";
    ServerChild server({"/usr/bin/python3", "-u", "-c",
                        "import http.server, functools, sys\n"
                        "h = functools.partial(http.server.SimpleHTTPRequestHandler, directory=sys.argv[1])\n"
                        "h.func.log_message = lambda *a: None\n"
                        "s = http.server.ThreadingHTTPServer(('127.0.0.1', 0), h)\n"
                        "print('listening on', s.server_address[1], flush=True)\n"
                        "s.serve_forever()\n",
                        dir.path().string()},
                       m.env, std::chrono::seconds(30));
    if (server.port() == 0) return "http.server did not start: " + server.output();
    const std::string url = "http://127.0.0.1:" + std::to_string(server.port()) + "/hello.txt";
    std::ofstream(dir / "siegerc") << "logging = false\nshow-logfile = false\nprotocol = HTTP/1.1\n";
    std::string out;
    auto summary = [&](const Captured& r, bool count) {
        std::string s;
        for (const char* field : {"Transactions", "Availability", "Successful transactions", "Failed transactions"}) {
            std::smatch mt;
            std::string text = r.out + r.err;
            std::regex line(std::string(field) + ":\\s+([0-9.]+)");
            if (std::regex_search(text, mt, line)) {
                if (!count && (std::string(field) == "Transactions" || std::string(field) == "Successful transactions"))
                    s += std::string(field) + ": " + (std::stod(mt[1]) > 0 ? "some" : "none") + "\n";
                else
                    s += std::string(field) + ": " + mt[1].str() + "\n";
            } else {
                // siege 4 prints JSON: "transactions": 200,
                std::string key = field;
                for (auto& c : key) c = static_cast<char>(std::tolower(c));
                key = std::regex_replace(key, std::regex(" "), "_");
                std::regex json("\"" + key + "\":\\s+([0-9.]+)");
                if (std::regex_search(text, mt, json)) {
                    if (!count && (key == "transactions" || key == "successful_transactions"))
                        s += key + ": " + (std::stod(mt[1]) > 0 ? "some" : "none") + "\n";
                    else
                        s += key + ": " + mt[1].str() + "\n";
                } else {
                    s += std::string(field) + " missing\n";
                }
            }
        }
        return s + status_line("siege", r);
    };
    std::vector<std::string> base = {"siege", "-R", dir / "siegerc", "-b", "-q", "-c", "20"};
    auto args = base;
    args.insert(args.end(), {"-r", "10", url});
    out += summary(run_in(m, args), true);
    args = base;
    args.insert(args.end(), {"-t", "2S", url});
    out += summary(run_in(m, args), false);
    return out;
}

std::string ssh_keygen(const Mode& m) {
    if (!have("ssh-keygen")) return "SKIP ssh-keygen not installed";
    TempDir dir;
    const std::string key = dir / "key";
    auto r = run_in(m, {"ssh-keygen", "-q", "-t", "rsa", "-b", "2048", "-N", "", "-C", "green", "-f", key});
    std::string out = status_line("ssh-keygen -t rsa", r) + r.err.substr(0, r.err.find("green:"));
    auto l = run_in(m, {"ssh-keygen", "-l", "-f", key + ".pub"});
    out += std::regex_replace(l.out, std::regex("SHA256:[A-Za-z0-9+/]+"), "SHA256:<hash>") + status_line("ssh-keygen -l", l);
    // The private key's public half is the public key.
    auto y = run_in(m, {"ssh-keygen", "-y", "-f", key});
    std::ifstream pub(key + ".pub");
    std::string pub_line;
    std::getline(pub, pub_line);
    out += std::string("-y matches .pub: ") + (y.out.substr(0, y.out.find(" ", 8)) == pub_line.substr(0, pub_line.find(" ", 8)) ? "yes" : "no") + "\n";
    out += status_line("ssh-keygen -y", y);
    return out;
}

// Pipes shared with another process are switched to O_NONBLOCK by the shim
// (the flag belongs to the open file description, which the other process
// shares), so stdio in a process that reads it with glibc's internal read
// sees EAGAIN: `seq | sort` loses input, git repack dies of SIGPIPE.

std::string git_clone_repack(const Mode& m) {
    if (!have("git")) return "SKIP git not installed";
    TempDir dir;
    const std::string src = dir / "src", dst = dir / "dst";
    const std::vector<std::string> id = {"GIT_AUTHOR_NAME=green", "GIT_AUTHOR_EMAIL=g@example.invalid",
                                         "GIT_COMMITTER_NAME=green", "GIT_COMMITTER_EMAIL=g@example.invalid",
                                         "GIT_AUTHOR_DATE=2020-01-01T00:00:00Z", "GIT_COMMITTER_DATE=2020-01-01T00:00:00Z"};
    // The source repository is made unpatched, identically in every mode.
    std::string script = "set -e; git init -q " + src + "; cd " + src +
                         "; for i in $(seq 1 30); do seq 1 $((i*200)) > f$((i%7)); git add -A; git commit -q -m c$i; done";
    auto made = run_capture({"bash", "-c", script}, id);
    if (made.status != 0) return "setup failed: " + made.err;
    std::string out;
    auto git = [&](std::vector<std::string> args) {
        std::vector<std::string> argv = {"git"};
        argv.insert(argv.end(), args.begin(), args.end());
        auto env = m.env;
        env.insert(env.end(), id.begin(), id.end());
        auto r = run_capture(argv, env);
        if (!m.env.empty()) {
            EXPECT_NE(r.err.find("green: shim active"), std::string::npos) << r.err;
        }
        out += r.out + status_line("git " + args[0], r);
    };
    git({"clone", "-q", "--no-hardlinks", src, dst});
    git({"-C", dst, "repack", "-q", "-a", "-d", "-f", "--threads=4"});
    git({"-C", dst, "fsck", "--no-progress"});
    git({"-C", dst, "log", "--format=%H %s"});
    git({"-C", dst, "count-objects"});
    return out;
}

std::string bash_pipeline(const Mode& m) {
    auto r = run_in(m, {"bash", "-c",
                        "seq 1 20000 | sort -rn | head -3; seq 1 5000 | tr 0-9 a-j | sort | uniq -c | sort -rn | head -2; "
                        "(exit 3) | cat; echo pipestatus ${PIPESTATUS[@]}; false | true; echo ${PIPESTATUS[@]}"});
    return r.out + status_line("bash", r);
}

using Scenario = std::string (*)(const Mode&);
const std::map<std::string, Scenario> kScenarios = {
    {"redis", redis},           {"memcached", memcached},     {"nginx", nginx},
    {"siege_http_server", siege_http}, {"ssh_keygen", ssh_keygen}, {"git_clone_repack", git_clone_repack},
    {"bash_pipeline", bash_pipeline},
};

// Unpatched results, computed once per scenario.
const std::string& unpatched(const std::string& scenario) {
    static std::map<std::string, std::string> cache;
    auto it = cache.find(scenario);
    if (it == cache.end()) it = cache.emplace(scenario, kScenarios.at(scenario)(mode_named("unpatched"))).first;
    return it->second;
}

class RealProgram : public ::testing::TestWithParam<std::tuple<std::string, std::string>> {};

TEST_P(RealProgram, SameResultsAsUnpatched) {
    const auto& [scenario, mode] = GetParam();
    const std::string& plain = unpatched(scenario);
    if (plain.rfind("SKIP ", 0) == 0) GTEST_SKIP() << plain.substr(5);
    std::string patched = mode == "unpatched" ? plain : kScenarios.at(scenario)(mode_named(mode));
    if (patched.rfind("SKIP ", 0) == 0) GTEST_SKIP() << patched.substr(5);
    ASSERT_FALSE(plain.empty());
    if (mode == "unpatched") {
        // The reduced output itself, so a scenario that broke unpatched fails here.
        EXPECT_EQ(plain.find(" exit 0\n") == std::string::npos, false) << plain;
        std::printf("%s", plain.c_str());
        return;
    }
    EXPECT_EQ(patched, plain);
}

std::vector<std::string> scenario_names() {
    std::vector<std::string> v;
    for (const auto& [k, _] : kScenarios) v.push_back(k);
    return v;
}

INSTANTIATE_TEST_SUITE_P(Programs, RealProgram,
                         ::testing::Combine(::testing::ValuesIn(scenario_names()),
                                            ::testing::Values("unpatched", "hubs1", "hubs2")),
                         [](const auto& info) { return std::get<0>(info.param) + "_" + std::get<1>(info.param); });

}  // namespace
