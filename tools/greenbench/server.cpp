// See server.hpp.
#include "server.hpp"

#include "../common/dump_request.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

#include "net.hpp"

namespace greenbench {

using namespace std::chrono_literals;

namespace {

constexpr std::size_t kTailLines = 20;

std::string join(const std::vector<std::string>& argv) {
    std::string s;
    for (const auto& a : argv) s += (s.empty() ? "" : " ") + a;
    return s;
}

// The port in a line such as "listening on 8080" or "listening on 127.0.0.1:8080".
int port_in_line(const std::string& line) {
    std::size_t at = line.find("listening on");
    if (at == std::string::npos) return 0;
    std::string rest = line.substr(at + 12);
    std::size_t end = rest.find_last_of("0123456789");
    if (end == std::string::npos) return 0;
    std::size_t begin = end;
    while (begin > 0 && std::isdigit(static_cast<unsigned char>(rest[begin - 1]))) --begin;
    int port = std::atoi(rest.substr(begin, end - begin + 1).c_str());
    return port > 0 && port < 65536 ? port : 0;
}

}  // namespace

bool port_accepts(int port) {
    Endpoint ep;
    if (!resolve("127.0.0.1", port, ep).empty()) return false;
    int fd = -1, err = 0;
    if (connect_to(ep, fd, Clock::now() + 1s, err) != Io::Ok) return false;
    close_fd(fd);
    return true;
}

void ServerProcess::fail(const std::string& why) {
    stop();  // also reads its output to the end
    std::string msg = why;
    std::string tail = output_tail();
    if (!tail.empty()) msg += "\n  its last output:\n" + tail;
    if (tail.find("Address already in use") != std::string::npos)
        msg += "\n  hint: the port is taken by another process; use port 0 (any free port) or another one.";
    throw ServerError(msg);
}

void ServerProcess::start(const ServerSpec& spec) {
    spec_ = spec;
    if (spec.argv.empty()) throw ServerError("no server command given (after --)");
    if (spec.port > 0 && port_accepts(spec.port))
        throw ServerError("port " + std::to_string(spec.port) +
                          " already accepts connections before the server started: another process is using it. "
                          "Stop it, or run the server on another port.");

    int out[2], err[2];
    if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0)
        throw ServerError(std::string("pipe: ") + std::strerror(errno));
    std::vector<char*> args;
    for (const auto& a : spec.argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    // The environment is built here: after fork only async-signal-safe calls.
    std::vector<char*> envp;
    for (char** e = environ; *e; ++e)
        if (!spec.strip_shim || std::strncmp(*e, "LD_PRELOAD=", 11) != 0) envp.push_back(*e);
    envp.push_back(nullptr);
    cpu_set_t set;
    CPU_ZERO(&set);
    for (int c : spec.cpus) CPU_SET(c, &set);
    pid_t parent = getpid();
    // "/autogroup-N nice K": the K to give the server's session.
    char nice_text[16] = {};
    if (spec.own_session) {
        std::ifstream group("/proc/self/autogroup");
        std::string line;
        std::getline(group, line);
        auto at = line.rfind(" nice ");
        if (at != std::string::npos) std::snprintf(nice_text, sizeof nice_text, "%s", line.c_str() + at + 6);
    }

    pid_ = fork();
    if (pid_ < 0) throw ServerError(std::string("fork: ") + std::strerror(errno));
    if (pid_ == 0) {
        // Child: only async-signal-safe calls until exec.
        dup2(out[1], 1);
        dup2(err[1], 2);
        prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive greenbench
        // Default dispositions, as a service manager starts a server: run from
        // a script's background job, greenbench inherits SIGINT and SIGQUIT
        // ignored, and under the shim an ignored SIGQUIT means no dump, so no
        // shim counters after each level.
        struct sigaction default_action {};
        default_action.sa_handler = SIG_DFL;
        sigaction(SIGINT, &default_action, nullptr);
        sigaction(SIGQUIT, &default_action, nullptr);
        if (getppid() != parent) _exit(127);
        if (!spec.cpus.empty()) sched_setaffinity(0, sizeof set, &set);
        if (spec.own_session && setsid() >= 0 && nice_text[0]) {
            int fd = open("/proc/self/autogroup", O_WRONLY | O_CLOEXEC);
            if (fd >= 0) {
                (void)!write(fd, nice_text, strlen(nice_text));
                close(fd);
            }
        }
        execvpe(args[0], args.data(), envp.data());
        const char* e = strerror(errno);
        (void)!write(2, "cannot run ", 11);
        (void)!write(2, args[0], strlen(args[0]));
        (void)!write(2, ": ", 2);
        (void)!write(2, e, strlen(e));
        (void)!write(2, "\n", 1);
        _exit(127);
    }
    close(out[1]);
    close(err[1]);
    fcntl(out[0], F_SETFL, O_NONBLOCK);
    fcntl(err[0], F_SETFL, O_NONBLOCK);
    drainers_.push_back(green::spawn([this, fd = out[0]] { drain(fd); }, {"server-stdout"}));
    drainers_.push_back(green::spawn([this, fd = err[0]] { drain(fd); }, {"server-stderr"}));

    auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                       std::chrono::duration<double>(spec.startup_timeout_s));
    std::string several;
    for (;;) {
        if (spec.port > 0) {
            auto ports = listening_ports();
            if (std::find(ports.begin(), ports.end(), spec.port) != ports.end() || port_accepts(spec.port)) {
                port_ = spec.port;
                break;
            }
        } else if (printed_port_ > 0) {
            port_ = printed_port_;
            break;
        } else {
            auto ports = listening_ports();
            if (ports.size() == 1) {
                port_ = ports[0];
                break;
            }
            if (ports.size() > 1) several = fmt::format("{}", fmt::join(ports, ", "));
        }
        if (!alive())
            fail("the server exited before accepting connections (" + exit_description() + ")\n  command: " +
                 join(spec.argv));
        if (Clock::now() > deadline) {
            std::string why = fmt::format("the server did not accept connections within {:g} s\n  command: {}",
                                          spec.startup_timeout_s, join(spec.argv));
            if (!several.empty()) why += fmt::format("\n  it listens on several ports ({}): pick one with --port", several);
            else if (spec.port > 0) why += fmt::format("\n  nothing listens on port {} (--port)", spec.port);
            else why += "\n  it printed no 'listening on PORT' line and listens on no TCP port yet"
                        " (a slow start? raise --startup-timeout)";
            fail(why);
        }
        green::this_fiber::sleep_for(20ms);
    }
    if (!port_accepts(port_))
        fail("the server announced port " + std::to_string(port_) + " but connections to it are refused");
}

void ServerProcess::drain(int fd) {
    std::string pending;
    char buf[4096];
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n > 0) {
            pending.append(buf, static_cast<std::size_t>(n));
            std::size_t nl;
            while ((nl = pending.find('\n')) != std::string::npos) {
                std::string line = pending.substr(0, nl);
                pending.erase(0, nl + 1);
                if (printed_port_ == 0) printed_port_ = port_in_line(line);
                if (line.rfind("green: counters: ", 0) == 0) counters_ = parse_shim_counters(line);
                if (line.rfind("green: dump of pid ", 0) == 0) {
                    in_dump_ = true;
                    dump_being_read_.clear();
                }
                if (in_dump_ && dump_being_read_.size() < (4u << 20)) dump_being_read_ += line + "\n";
                if (line.rfind("green: end of dump", 0) == 0) {
                    in_dump_ = false;
                    last_dump_.swap(dump_being_read_);
                    ++dumps_seen_;
                }
                tail_.push_back(line);
                if (tail_.size() > kTailLines) tail_.pop_front();
            }
            if (pending.size() > 4096) pending.clear();  // a huge line without newline: keep nothing
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) {
            if (green::wait_fd(fd, green::kReadable) == green::WaitResult::Ready) continue;
        }
        break;  // EOF, error or cancelled
    }
    if (!pending.empty()) tail_.push_back(pending);
    close_fd(fd);
}

bool ServerProcess::alive() {
    if (pid_ <= 0 || exited_) return false;
    int st = 0;
    pid_t r = waitpid(pid_, &st, WNOHANG);
    if (r == pid_) {
        exited_ = true;
        status_ = st;
        return false;
    }
    return true;
}

std::string ServerProcess::exit_description() const {
    if (!exited_) return "still running";
    if (WIFEXITED(status_)) return "exit status " + std::to_string(WEXITSTATUS(status_));
    if (WIFSIGNALED(status_)) return std::string("killed by signal ") + strsignal(WTERMSIG(status_));
    return "ended";
}

std::string ServerProcess::output_tail() const {
    std::string s;
    for (const auto& l : tail_) s += "    " + l + "\n";
    if (!s.empty()) s.pop_back();
    return s;
}

ShimCounters ServerProcess::shim_counters(std::chrono::milliseconds timeout) {
    std::string why;
    const std::uint64_t before = dumps_seen_;
    if (pid_ <= 0 || !green_tools::send_dump_signal(pid_, why)) return {};
    // The drainer fibers read the server's stderr; this fiber only looks.
    auto until = Clock::now() + timeout;
    while (dumps_seen_ == before && Clock::now() < until && alive()) green::this_fiber::sleep_for(5ms);
    return dumps_seen_ != before ? counters_ : ShimCounters{};
}

void ServerProcess::stop() {
    if (pid_ > 0 && alive()) {
        kill(pid_, SIGTERM);
        auto until = Clock::now() + 3s;
        while (alive() && Clock::now() < until) green::this_fiber::sleep_for(10ms);
        if (alive()) {
            kill(pid_, SIGKILL);
            int st = 0;
            waitpid(pid_, &st, 0);
            exited_ = true;
            status_ = st;
        }
    }
    // The pipes reach EOF once the server and its children are gone; a
    // grandchild that kept them open must not hold greenbench.
    for (auto& d : drainers_) {
        if (!d.wait_for(200ms)) d.cancel();
        try {
            d.join();
        } catch (const green::Cancelled&) {
        }
    }
    drainers_.clear();
    pid_ = -1;
}

std::vector<int> ServerProcess::listening_ports() const {
    std::set<std::string> inodes;
    std::string fd_dir = "/proc/" + std::to_string(pid_) + "/fd";
    if (DIR* d = opendir(fd_dir.c_str())) {
        while (dirent* e = readdir(d)) {
            char target[64];
            ssize_t n = readlinkat(dirfd(d), e->d_name, target, sizeof target - 1);
            if (n <= 0) continue;
            target[n] = '\0';
            if (std::strncmp(target, "socket:[", 8) == 0) inodes.insert(std::string(target + 8, std::strlen(target + 8) - 1));
        }
        closedir(d);
    }
    std::set<int> ports;
    for (const char* table : {"/net/tcp", "/net/tcp6"}) {
        std::ifstream f("/proc/" + std::to_string(pid_) + table);
        std::string line;
        std::getline(f, line);  // header
        while (std::getline(f, line)) {
            std::istringstream in(line);
            std::string sl, local, remote, state, queues, timer, retr, uid, timeout, inode;
            in >> sl >> local >> remote >> state >> queues >> timer >> retr >> uid >> timeout >> inode;
            if (state != "0A" || !inodes.count(inode)) continue;  // 0A: LISTEN
            std::size_t colon = local.rfind(':');
            if (colon != std::string::npos) ports.insert(static_cast<int>(std::stoul(local.substr(colon + 1), nullptr, 16)));
        }
    }
    return {ports.begin(), ports.end()};
}

ProcSample ServerProcess::sample() const {
    ProcSample s;
    std::ifstream f("/proc/" + std::to_string(pid_) + "/stat");
    std::string text;
    if (pid_ <= 0 || !std::getline(f, text)) return s;
    std::size_t paren = text.rfind(')');  // the command name may hold spaces
    if (paren == std::string::npos) return s;
    std::istringstream in(text.substr(paren + 2));
    std::vector<std::string> fields;  // fields[0] is field 3 (state)
    for (std::string w; in >> w;) fields.push_back(w);
    if (fields.size() < 22) return s;
    static const double tick = static_cast<double>(sysconf(_SC_CLK_TCK));
    static const double page_mib = static_cast<double>(sysconf(_SC_PAGESIZE)) / (1024.0 * 1024.0);
    s.cpu_s = (std::stod(fields[11]) + std::stod(fields[12])) / tick;  // utime, stime
    s.threads = std::stoi(fields[17]);                                  // num_threads
    s.rss_mib = std::stod(fields[21]) * page_mib;                       // rss in pages
    s.ok = true;
    return s;
}

}  // namespace greenbench
