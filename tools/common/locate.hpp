// Where greenrun finds libgreen-preload.so, and greenbench finds greenrun.
//
// Both are looked up relative to the running binary, so a build tree, an
// installed tree and an installed tree that was moved (DESTDIR, a relocated
// prefix) all work without configuration:
//   1. build tree:   <dir of greenrun>/../interpose/libgreen-preload.so
//   2. installed:    <dir of greenrun>/<bindir-to-libdir>/libgreen-preload.so
//   3. installed:    <libdir of the configured prefix>/libgreen-preload.so
// GREEN_BINDIR_TO_LIBDIR and GREEN_INSTALL_LIBDIR come from tools/meson.build.
#pragma once

#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <vector>

#ifndef GREEN_BINDIR_TO_LIBDIR
#define GREEN_BINDIR_TO_LIBDIR "../lib"
#endif
#ifndef GREEN_INSTALL_LIBDIR
#define GREEN_INSTALL_LIBDIR "/usr/local/lib"
#endif

namespace green_tools {

inline constexpr const char* kPreloadName = "libgreen-preload.so";

// The directory of the running executable, symlinks resolved.
inline std::string self_dir() {
    char buf[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n <= 0) return ".";
    std::string path(buf, static_cast<size_t>(n));
    size_t slash = path.rfind('/');
    return slash == 0 ? "/" : path.substr(0, slash);
}

inline std::vector<std::string> preload_candidates(const std::string& dir) {
    return {dir + "/../interpose/" + kPreloadName, dir + "/" GREEN_BINDIR_TO_LIBDIR "/" + kPreloadName,
            std::string(GREEN_INSTALL_LIBDIR) + "/" + kPreloadName};
}

// The canonical path of the first candidate that is a regular file, or "".
inline std::string first_existing(const std::vector<std::string>& candidates) {
    for (const auto& c : candidates) {
        struct stat st;
        char real[PATH_MAX];
        if (stat(c.c_str(), &st) == 0 && S_ISREG(st.st_mode) && realpath(c.c_str(), real)) return real;
    }
    return {};
}

}  // namespace green_tools
