// What meson hands the tests through the environment (the paths of the built
// programs and of the shim), and the environment that runs a program under
// the shim. A variable that is missing stops the test binary at once with a
// message that says how to run it: no test can pass, or fail for a reason
// that is not its own, because a path was empty.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace green::test {

inline std::string env_or_die(const char* name) {
    const char* v = std::getenv(name);
    if (!v || !*v) {
        std::fprintf(stderr, "test setup: environment variable %s is not set (run through meson test)\n", name);
        std::abort();
    }
    return v;
}

inline std::string preload_env() { return "LD_PRELOAD=" + env_or_die("GREEN_PRELOAD"); }

// The shim with `hubs` hubs, as "NAME=value" entries for a child's environment.
inline std::vector<std::string> shim_env(int hubs) { return {preload_env(), "GREEN_HUBS=" + std::to_string(hubs)}; }

inline std::string example_path(const std::string& name) { return env_or_die("GREEN_EXAMPLES_DIR") + "/" + name; }

}  // namespace green::test
