// The server under test, as a child process: started, waited for until it
// accepts connections, sampled from /proc while it is loaded, stopped.
//
// The port is learnt, in this order: --port when given; a "listening on PORT"
// line on its stdout (what the examples print); otherwise the single TCP port
// the process listens on, read from /proc/PID/fd and /proc/PID/net/tcp{,6}.
// Its stdout and stderr are drained by fibers (a server that logs must never
// block on a full pipe) and their last lines kept for error messages.
#pragma once

#include <sys/types.h>

#include <deque>
#include <stdexcept>
#include <string>
#include <vector>

#include <green/green.hpp>

#include <chrono>

#include "report.hpp"

namespace greenbench {

struct ServerSpec {
    std::vector<std::string> argv;        // what to exec (greenrun first when patched)
    bool strip_shim = true;               // drop LD_PRELOAD (the unpatched run)
    int port = 0;                         // the port it listens on; 0: learn it
    double startup_timeout_s = 10;
    std::vector<int> cpus;                // CPU affinity; empty: inherit
    // A session of its own (setsid), as a service runs: with autogroup
    // scheduling the kernel shares CPU between sessions first, so the server
    // and this load generator do not compete thread by thread, as they would
    // not from two machines. It takes greenbench's autogroup nice.
    bool own_session = true;
};

// Why a server could not be used; what() is the whole message for the user.
struct ServerError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

struct ProcSample {
    bool ok = false;
    double rss_mib = 0;
    int threads = 0;
    double cpu_s = 0;  // user + system since start
};

class ServerProcess {
public:
    ServerProcess() = default;
    ServerProcess(const ServerProcess&) = delete;
    ServerProcess& operator=(const ServerProcess&) = delete;
    ~ServerProcess() { stop(); }

    // Starts the server and returns once it accepts connections; throws
    // ServerError when it cannot be started, exits early, never accepts, or
    // its port is already taken.
    void start(const ServerSpec& spec);
    void stop();

    int port() const { return port_; }
    pid_t pid() const { return pid_; }
    bool alive();  // false once it exited; exit_description() then says how
    std::string exit_description() const;
    std::string output_tail() const;  // its last lines of output, indented
    ProcSample sample() const;
    // A patched server's counters now: asks for its on-demand dump (the
    // checks of greenrun --dump first) and waits up to `timeout` for the
    // dump's counters line and its end on the server's stderr.
    ShimCounters shim_counters(std::chrono::milliseconds timeout);
    // The whole text of the latest on-demand dump (every fiber, what it
    // waits on, its stack), kept for a server that stopped answering.
    const std::string& last_dump() const { return last_dump_; }

private:
    void drain(int fd);
    std::vector<int> listening_ports() const;
    [[noreturn]] void fail(const std::string& why);

    ServerSpec spec_;
    pid_t pid_ = -1;
    int status_ = 0;
    bool exited_ = false;
    int port_ = 0;
    int printed_port_ = 0;
    std::deque<std::string> tail_;
    std::vector<green::Task<void>> drainers_;
    ShimCounters counters_;       // from the latest dump's counters line
    std::uint64_t dumps_seen_ = 0;  // "green: end of dump" lines read
    std::string dump_being_read_, last_dump_;
    bool in_dump_ = false;
};

// Is something accepting on 127.0.0.1:port right now?
bool port_accepts(int port);

}  // namespace greenbench
