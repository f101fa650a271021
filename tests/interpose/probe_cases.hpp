// The test side of the probes' command line (probe_main.hpp): the cases a
// probe lists, in order, one a line, to compare with the cases a test runs,
// so that a case added to a probe but to no test fails.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "../common/child.hpp"

namespace green::test {

inline std::string probe_cases(const std::string& probe) {
    auto listed = run_capture({probe, "--list"});
    EXPECT_EQ(listed.status, 0) << listed.err;
    return listed.out;
}

inline std::string lines(const std::vector<std::string>& v) {
    std::string s;
    for (const auto& c : v) s += c + "\n";
    return s;
}

}  // namespace green::test
