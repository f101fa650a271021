// greenbench's subcommands other than `run` (main.cpp parses the options).
#pragma once

#include <string>
#include <vector>

#include "load.hpp"

namespace greenbench {

struct CompareOptions {
    std::vector<std::string> command;  // the server, as the user gave it after --
    std::vector<int> levels = {16, 256, 2000};
    std::vector<std::string> hubs = {"1"};  // GREEN_HUBS values: one patched run per value
    std::vector<std::string> paths;
    Mode mode = Mode::KeepAlive;
    double duration_s = 5, warmup_s = 1, timeout_s = 5;
    std::size_t payload = 64;
    int threads = 1;
    int port = 0;
    double startup_timeout_s = 10;
    double settle_timeout_s = 30;  // after each level, for a lone request to be answered
    std::string before_each;       // a shell command run before each server starts
    std::string label, title;
    bool unpatched = true, patched = true;
    std::string json_path = "greenbench-compare.json", svg_path = "greenbench-compare.svg", markdown_path;
    std::vector<int> cpu_server, cpu_load;
    bool same_session = false;  // the server in greenbench's session rather than its own
    std::string greenrun;  // empty: next to greenbench
    bool progress = true;  // a live line on a terminal
    std::string invocation;
};

// Runs the server unpatched and under greenrun, sweeps the levels, prints the
// table and writes the files. Returns the exit status.
int run_compare(const CompareOptions& o);

// A delay server for /upstream: answers "GET /...?ms=N" after N ms and closes.
// One fiber per connection. Prints "listening on PORT". Never returns.
int run_delay_server(int port);

}  // namespace greenbench
