// A process as /proc shows it: the figures the tests hold a process to (open
// fds, mappings, resident memory, OS threads) and whether a library is
// mapped (proof that a preload took effect). Each read is one snapshot; -1
// when the process is gone.
#pragma once

#include <dirent.h>
#include <sys/types.h>

#include <climits>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

namespace green::test {

inline std::string proc_path(pid_t pid, const char* what) { return "/proc/" + std::to_string(pid) + "/" + what; }

// Open fds numbered below `below`: RLIMIT_NOFILE caps fd numbers, not how
// many are open (a process may inherit one above its limit).
inline long proc_fd_count(pid_t pid, long below = LONG_MAX) {
    DIR* d = opendir(proc_path(pid, "fd").c_str());
    if (!d) return -1;
    long n = 0;
    while (dirent* e = readdir(d))
        if (e->d_name[0] != '.' && std::atol(e->d_name) < below) ++n;
    closedir(d);
    return n;
}

inline long proc_map_count(pid_t pid) {
    std::ifstream f(proc_path(pid, "maps"));
    if (!f) return -1;
    std::string line;
    long n = 0;
    while (std::getline(f, line)) ++n;
    return n;
}

inline bool proc_maps_contain(pid_t pid, const std::string& library) {
    std::ifstream f(proc_path(pid, "maps"));
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str().find(library) != std::string::npos;
}

// A numeric field of /proc/PID/status ("VmRSS", "Threads", ...).
inline long proc_status_field(pid_t pid, const std::string& field) {
    std::ifstream f(proc_path(pid, "status"));
    std::string line;
    while (std::getline(f, line))
        if (line.rfind(field + ":", 0) == 0) return std::atol(line.c_str() + field.size() + 1);
    return -1;
}

struct ProcFigures {
    long fds, maps, rss_kb, threads;
};

inline ProcFigures proc_figures(pid_t pid) {
    return {proc_fd_count(pid), proc_map_count(pid), proc_status_field(pid, "VmRSS"),
            proc_status_field(pid, "Threads")};
}

}  // namespace green::test
