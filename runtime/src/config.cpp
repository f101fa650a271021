// GREEN_* environment variables, parsed and validated once.
//
// A value that does not parse is a configuration error the user must see at
// start, not a silent default: one line naming the variable, what it got and
// what it accepts, then exit status 2.
#include <green/run.hpp>

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "cpus.hpp"
#include "os.hpp"

namespace green {

namespace {

[[noreturn]] void reject(const char* var, const char* value, const char* accepted) {
    // A long value is shown cut, marked "...", so the line (and its newline)
    // always fits: snprintf returns the length it wanted, not what it wrote.
    char line[512];
    const int shown = std::strlen(value) > 200 ? 200 : static_cast<int>(std::strlen(value));
    int n = std::snprintf(line, sizeof line, "green: %s='%.*s%s' is invalid: expected %s\n", var, shown, value,
                          shown < static_cast<int>(std::strlen(value)) ? "..." : "", accepted);
    if (n < 0) n = 0;
    if (n >= static_cast<int>(sizeof line)) {
        n = static_cast<int>(sizeof line) - 1;
        line[n - 1] = '\n';
    }
    detail::os::write_stderr(line, static_cast<std::size_t>(n));
    _exit(2);
}

bool parse_unsigned(const char* text, unsigned long long& out) {
    if (!*text || *text == '-' || *text == '+' || *text == ' ') return false;
    errno = 0;
    char* end = nullptr;
    out = std::strtoull(text, &end, 10);
    return errno == 0 && end != text && *end == '\0';
}

std::size_t parse_size(const char* var, const char* text, std::size_t lo, std::size_t hi, const char* accepted) {
    std::string_view s(text);
    unsigned long long mult = 1;
    if (!s.empty()) {
        switch (s.back()) {
            case 'k': case 'K': mult = 1024; break;
            case 'm': case 'M': mult = 1024 * 1024; break;
            case 'g': case 'G': mult = 1024ull * 1024 * 1024; break;
            default: break;
        }
    }
    if (mult != 1) s.remove_suffix(1);
    char digits[32];
    if (s.empty() || s.size() >= sizeof digits) reject(var, text, accepted);
    std::memcpy(digits, s.data(), s.size());
    digits[s.size()] = '\0';
    unsigned long long v = 0;
    if (!parse_unsigned(digits, v) || v > hi / mult || v * mult < lo) reject(var, text, accepted);
    return static_cast<std::size_t>(v * mult);
}

unsigned long long parse_count(const char* var, const char* text, unsigned long long lo, unsigned long long hi,
                               const char* accepted) {
    unsigned long long v = 0;
    if (!parse_unsigned(text, v) || v < lo || v > hi) reject(var, text, accepted);
    return v;
}

// GREEN_HUBS=auto and adaptive: one hub per CPU this process may run on, within 1..64.
unsigned auto_hubs() noexcept {
    unsigned n = detail::usable_cpus();
    return n > 64 ? 64 : n;
}

Config load() {
    Config c{};
    c.stack_size = 256 * 1024;
    c.pool_size = 16;
    c.stack_guard = StackGuard::Auto;
    c.stats = false;
    c.hubs = auto_hubs();
    c.hubs_adaptive = true;
    c.balance = Balance::Auto;
    c.blocked_ms = 2000;
    c.dump_signal = SIGQUIT;
    c.stack_size_set = false;
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    c.thread_locals_per_thread = false;  // those runtimes keep their own per-thread state in TLS
#else
    c.thread_locals_per_thread = true;
#endif
    if (const char* v = std::getenv("GREEN_STACK_SIZE")) {
        c.stack_size = parse_size("GREEN_STACK_SIZE", v, 16 * 1024, 1024ull * 1024 * 1024,
                                  "a stack size in bytes with optional K/M/G suffix, 16K to 1G (e.g. 256K)");
        c.stack_size_set = true;
    }
    if (const char* v = std::getenv("GREEN_POOL_SIZE"))
        c.pool_size = parse_count("GREEN_POOL_SIZE", v, 1, 1024, "a thread count from 1 to 1024");
    if (const char* v = std::getenv("GREEN_THREAD_LOCALS")) {
        std::string_view s(v);
        if (s == "thread") c.thread_locals_per_thread = true;
        else if (s == "hub") c.thread_locals_per_thread = false;
        else reject("GREEN_THREAD_LOCALS", v, "thread or hub");
    }
    if (const char* v = std::getenv("GREEN_STACK_GUARD")) {
        std::string_view s(v);
        if (s == "auto") c.stack_guard = StackGuard::Auto;
        else if (s == "on") c.stack_guard = StackGuard::On;
        else if (s == "off") c.stack_guard = StackGuard::Off;
        else reject("GREEN_STACK_GUARD", v, "one of auto, on, off");
    }
    if (const char* v = std::getenv("GREEN_STATS")) {
        std::string_view s(v);
        if (s == "1") c.stats = true;
        else if (s == "0" || s.empty()) c.stats = false;
        else reject("GREEN_STATS", v, "0 or 1");
    }
    if (const char* v = std::getenv("GREEN_BLOCKED_MS"))
        c.blocked_ms = static_cast<unsigned>(
            parse_count("GREEN_BLOCKED_MS", v, 0, 3600000, "milliseconds from 0 (off) to 3600000"));
    if (const char* v = std::getenv("GREEN_DUMP_SIGNAL")) {
        std::string_view s(v);
        if (s.starts_with("SIG")) s.remove_prefix(3);
        if (s == "QUIT") c.dump_signal = SIGQUIT;
        else if (s == "USR1") c.dump_signal = SIGUSR1;
        else if (s == "USR2") c.dump_signal = SIGUSR2;
        else if (s == "0" || s == "off") c.dump_signal = 0;
        else reject("GREEN_DUMP_SIGNAL", v, "one of QUIT, USR1, USR2 (SIG prefix optional), or 0/off for none");
    }
    if (const char* v = std::getenv("GREEN_HUBS")) {
        if (std::string_view(v) == "adaptive") {
        } else if (std::string_view(v) == "auto") {
            c.hubs_adaptive = false;
        } else {
            c.hubs = static_cast<unsigned>(
                parse_count("GREEN_HUBS", v, 1, 64, "a hub count from 1 to 64, auto, or adaptive"));
            c.hubs_adaptive = false;
        }
    }
    if (c.hubs == 1) c.hubs_adaptive = false;
    if (const char* v = std::getenv("GREEN_BALANCE")) {
        std::string_view s = v;
        if (s == "auto") c.balance = Balance::Auto;
        else if (s == "eager") c.balance = Balance::Eager;
        else if (s == "off") c.balance = Balance::Off;
        else reject("GREEN_BALANCE", v, "auto, eager or off");
    }
    return c;
}

}  // namespace

const Config& config() noexcept {
    static const Config c = load();
    return c;
}

}  // namespace green
