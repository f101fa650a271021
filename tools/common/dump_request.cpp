// See dump_request.hpp. The dump itself is written by the target, to its own
// stderr (runtime/src/dump.cpp); this side only decides whether sending the
// signal is safe. A signal the target does not catch would do what it does
// by default (SIGQUIT: core dump), so every check below must pass first:
// green is mapped, dumps were not turned off, and the signal is caught.
#include "dump_request.hpp"

#include <signal.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

namespace green_tools {

namespace {

std::string read_file(const std::string& path, bool& ok) {
    std::ifstream f(path, std::ios::binary);
    ok = static_cast<bool>(f);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

// The value of GREEN_DUMP_SIGNAL the program started with (environ is the
// exec-time environment, which is what the runtime read), as a signal
// number; 0 when off, -1 when unparsable.
int dump_signal_of(const std::string& environ) {
    std::string value = "QUIT";  // the runtime's default
    std::size_t at = 0;
    while (at < environ.size()) {
        std::size_t end = environ.find('\0', at);
        if (end == std::string::npos) end = environ.size();
        std::string entry = environ.substr(at, end - at);
        if (entry.rfind("GREEN_DUMP_SIGNAL=", 0) == 0) value = entry.substr(18);
        at = end + 1;
    }
    if (value.rfind("SIG", 0) == 0) value = value.substr(3);
    if (value == "QUIT") return SIGQUIT;
    if (value == "USR1") return SIGUSR1;
    if (value == "USR2") return SIGUSR2;
    if (value == "0" || value == "off") return 0;
    return -1;
}

// Is `sig` in the SigCgt (caught signals) mask of /proc/PID/status?
bool catches(const std::string& status, int sig) {
    std::size_t at = status.find("\nSigCgt:");
    if (at == std::string::npos) return false;
    unsigned long long mask = std::strtoull(status.c_str() + at + 8, nullptr, 16);
    return (mask >> (sig - 1)) & 1;
}

}  // namespace

bool send_dump_signal(pid_t pid, std::string& why, int* sent) {
    const std::string proc = "/proc/" + std::to_string(pid);
    const std::string who = "--dump " + std::to_string(pid) + ": ";
    bool ok = false;
    std::string maps = read_file(proc + "/maps", ok);
    if (!ok) {
        why = who + "no such process, or not ours to inspect";
        return false;
    }
    if (maps.find("libgreen") == std::string::npos) {
        why = who + "green is not loaded in that process; nothing sent";
        return false;
    }
    std::string environ = read_file(proc + "/environ", ok);
    int sig = dump_signal_of(environ);
    if (sig <= 0) {
        why = who + "the process started with GREEN_DUMP_SIGNAL " + (sig == 0 ? "off" : "unparsable") + "; nothing sent";
        return false;
    }
    std::string status = read_file(proc + "/status", ok);
    if (!catches(status, sig)) {
        why = who + "the process does not catch SIG" + sigabbrev_np(sig) +
              " (it was ignored or handled at start, or the program changed it); nothing sent";
        return false;
    }
    if (kill(pid, sig) != 0) {
        why = who + std::strerror(errno);
        return false;
    }
    if (sent) *sent = sig;
    return true;
}

int request_dump(pid_t pid) {
    std::string why;
    int sig = 0;
    if (!send_dump_signal(pid, why, &sig)) {
        std::fprintf(stderr, "greenrun: %s\n", why.c_str());
        return 1;
    }
    std::printf("greenrun: sent SIG%s to %d; the dump goes to that process's stderr\n", sigabbrev_np(sig),
                static_cast<int>(pid));
    return 0;
}

}  // namespace green_tools
