// Paths the e2e tests get from meson through the environment. A missing one
// is a test failure that says how to run the test, not a crash.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

namespace green::test {

inline std::string env_path(const char* name) {
    const char* v = std::getenv(name);
    if (!v) {
        ADD_FAILURE() << name << " is not set (run through meson test)";
        return "/nonexistent";
    }
    return v;
}

}  // namespace green::test
