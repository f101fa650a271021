// Files a test writes or has a child write: a temporary directory that lives
// exactly as long as its object (removed with everything in it, whether the
// test passed or not), and reading a whole file back.
#pragma once

#include <stdlib.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <system_error>

namespace green::test {

class TempDir {
public:
    TempDir() {
        char tmpl[] = "/tmp/green-test-XXXXXX";
        if (!mkdtemp(tmpl)) {
            std::perror("test setup: mkdtemp");
            std::abort();
        }
        path_ = tmpl;
    }
    ~TempDir() {
        std::error_code ignored;
        std::filesystem::remove_all(path_, ignored);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;

    const std::filesystem::path& path() const { return path_; }
    std::string operator/(const std::string& name) const { return (path_ / name).string(); }

private:
    std::filesystem::path path_;
};

inline std::string slurp(const std::string& path) {
    std::ifstream f(path);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

}  // namespace green::test
