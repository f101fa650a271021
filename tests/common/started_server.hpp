// What every test checks first about a server it starts, patched or not:
// the server announced its port, and the shim is mapped into it exactly when
// it should be, so a preload that silently failed to load (or a greenrun
// that ran the program unpatched) fails the test instead of testing the
// unpatched program twice.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "server_child.hpp"

namespace green::test {

inline std::unique_ptr<ServerChild> start_server(const std::vector<std::string>& argv,
                                                 const std::vector<std::string>& env, bool patched) {
    auto s = std::make_unique<ServerChild>(argv, env);
    EXPECT_GT(s->port(), 0) << "no 'listening on PORT' from " << argv[0] << "; output:\n" << s->output();
    if (s->port() > 0) {
        EXPECT_EQ(s->maps("libgreen-preload.so"), patched) << argv[0];
    }
    return s;
}

}  // namespace green::test
