// The command line shared by the differential probes: `PROBE --list` prints
// the case names, `PROBE CASE` runs one. Output is line-buffered so a case
// that ends the process (exit from a thread, abort) loses nothing. Errors
// are printed by name ("EAGAIN"), which reads the same in every run.
#pragma once

#include <chrono>
#include <cstdio>
#include <cstring>
#include <iterator>

namespace green::probe {

using Clock = std::chrono::steady_clock;

// Timing is printed only as lower bounds ("waited >= 30ms: 1").
inline long ms_since(Clock::time_point t0) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
}

inline const char* errno_name(int e) {
    if (e == 0) return "0";
    const char* name = strerrorname_np(e);
    return name ? name : strerror(e);
}

struct Case {
    const char* name;
    void (*fn)();
};

template <std::size_t N>
int main(const char* program, const Case (&cases)[N], int argc, char** argv) {
    std::setvbuf(stdout, nullptr, _IOLBF, 0);
    if (argc == 2 && std::strcmp(argv[1], "--list") == 0) {
        for (const Case& c : cases) std::printf("%s\n", c.name);
        return 0;
    }
    for (const Case& c : cases) {
        if (argc == 2 && std::strcmp(argv[1], c.name) == 0) {
            c.fn();
            return 0;
        }
    }
    std::fprintf(stderr, "usage: %s --list | %s CASE\n", program, program);
    return 2;
}

}  // namespace green::probe
