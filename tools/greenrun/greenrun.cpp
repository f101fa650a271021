// greenrun: run a program under green's LD_PRELOAD shim, like torsocks or
// eatmydata.
//
//   greenrun [options] -- program args...
//
// Options become GREEN_* variables; every GREEN_* value (from an option or
// already in the environment) is validated here by the runtime's own parser,
// so a bad one stops greenrun with the same one-line message and status 2 the
// shim would give. The program is then checked (would the loader honour
// LD_PRELOAD for it?) and exec'd, so its exit status is greenrun's.
#include <green/run.hpp>

#include <CLI/CLI.hpp>

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "../common/cli.hpp"
#include "../common/dump_request.hpp"
#include "../common/locate.hpp"
#include "program_check.hpp"

namespace {

constexpr const char* kDescription =
    "greenrun - run an unmodified, dynamically linked program under green's LD_PRELOAD shim.\n"
    "Its main thread becomes a fiber, and blocking socket, pipe, poll/select/epoll, sleep and DNS calls\n"
    "suspend only the calling fiber.\n\n"
    "Usage: greenrun [options] -- program [args...]\n"
    "       greenrun --check [options] -- program\n"
    "       greenrun --dump PID";

constexpr const char* kFooter =
    "\nEach option sets the GREEN_* variable named in its description; variables already in the\n"
    "environment are kept unless an option overrides them. Every GREEN_* value is validated before\n"
    "the program starts.\n\n"
    "Exit status: the program's own (greenrun execs it); 2 for a bad option or GREEN_* value;\n"
    "126 when the shim cannot apply (statically linked, setuid/setgid, not executable; see --check);\n"
    "127 when the program is not found; 1 when libgreen-preload.so cannot be found.\n\n"
    "Examples:\n"
    "  greenrun -- ./my_server 8080\n"
    "  greenrun --hubs 2 --stats -- python3 client.py\n"
    "  greenrun --check -- /usr/bin/curl\n"
    "  greenrun --dump 4242      # every fiber of that green program, with stacks, on its stderr\n";

// The description already shows the usage, with the "--" CLI11 cannot show.
struct Formatter : CLI::Formatter {
    std::string make_usage(const CLI::App*, std::string) const override { return ""; }
};

void set_env(const char* name, const std::string& value) {
    if (!value.empty()) setenv(name, value.c_str(), 1);
}

// LD_PRELOAD with the shim first (the first definition of a symbol wins) and
// whatever the user preloads already after it.
std::string preload_value(const std::string& shim) {
    std::string out = shim;
    if (const char* old = std::getenv("LD_PRELOAD")) {
        std::string rest = old;
        size_t start = 0;
        while (start <= rest.size()) {
            size_t end = rest.find_first_of(": ", start);
            std::string item = rest.substr(start, end == std::string::npos ? std::string::npos : end - start);
            if (!item.empty() && item != shim) out += ":" + item;
            if (end == std::string::npos) break;
            start = end + 1;
        }
    }
    return out;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{kDescription, "greenrun"};
    app.footer(kFooter);
    auto formatter = std::make_shared<Formatter>();
    formatter->column_width(30);
    app.formatter(formatter);
    std::string hubs, stack_size, pool_size, stack_guard, preload;
    bool stats = false, check = false, verbose = false;
    app.add_option("--hubs", hubs,
                   "GREEN_HUBS: hub threads (OS threads running fibers): 1-64, auto (one per CPU the program may use: "
                   "affinity mask and cgroup CPU quota), or adaptive (the default: as many as auto, but threads use "
                   "one hub until it is saturated while CPUs idle; then more, and running threads move there; see "
                   "docs/benchmarks.md, \"Scaling over hubs\")")
        ->type_name("N");
    app.add_option("--stack-size", stack_size,
                   "GREEN_STACK_SIZE: stack size of each fiber, bytes with optional K/M/G, 16K-1G. Default 256K")
        ->type_name("SIZE");
    app.add_option("--pool-size", pool_size,
                   "GREEN_POOL_SIZE: threads of the blocking pool (DNS, files), 1-1024. Default 16")
        ->type_name("N");
    app.add_option("--stack-guard", stack_guard,
                   "GREEN_STACK_GUARD: guard pages below fiber stacks: auto, on or off. Default auto")
        ->type_name("MODE");
    app.add_flag("--stats", stats, "GREEN_STATS=1: print the shim's counters at exit (shows it was active)");
    app.add_flag("--check", check,
                 "Do not run: report whether the shim would be active for the program (dynamically linked, "
                 "not setuid/setgid) and which library would be preloaded; exit 0 if so, 1 if not");
    app.add_option("--preload", preload, "Use this libgreen-preload.so instead of the one found next to greenrun")
        ->type_name("PATH");
    int dump_pid = 0;
    app.add_option("--dump", dump_pid,
                   "Do not run: ask the running green program PID to print every fiber (hub, state, wait, "
                   "stack) on its stderr, through its GREEN_DUMP_SIGNAL; it keeps running")
        ->type_name("PID")
        ->check(CLI::PositiveNumber);
    app.add_flag("-v,--verbose", verbose, "Print the environment set and the command before running it");
    app.set_version_flag("--version", std::string("greenrun (green) ") + GREEN_VERSION);

    // The program starts after "--", else at the first word that is neither
    // an option nor an option's value; CLI11's prefix-command mode stops there
    // and leaves the rest, the program's own arguments, unparsed. It also
    // leaves an unknown option there, which is an error of ours.
    app.prefix_command();
    std::vector<std::string> command;
    app.callback([&] {
        command = app.remaining();
        if (!command.empty() && command.front() == "--") command.erase(command.begin());
        else if (!command.empty() && command.front().starts_with('-'))
            throw CLI::ExtrasError({command.front()});
    });
    if (auto status = green_tools::parse_command_line(app, argc, argv, "Run 'greenrun --help' for the options."))
        return *status;
    if (dump_pid > 0) {
        if (!command.empty()) {
            std::fprintf(stderr, "greenrun: --dump takes no program\n");
            return 2;
        }
        return green_tools::request_dump(static_cast<pid_t>(dump_pid));
    }
    if (command.empty()) {
        std::fprintf(stderr, "greenrun: no program given\nUsage: greenrun [options] -- program [args...]\n");
        return 2;
    }

    set_env("GREEN_HUBS", hubs);
    set_env("GREEN_STACK_SIZE", stack_size);
    set_env("GREEN_POOL_SIZE", pool_size);
    set_env("GREEN_STACK_GUARD", stack_guard);
    if (stats) setenv("GREEN_STATS", "1", 1);
    green::config();  // the shim's parser: a bad GREEN_* value prints one line and exits 2

    std::string shim;
    if (!preload.empty()) {
        shim = green_tools::first_existing({preload});
        if (shim.empty()) {
            std::fprintf(stderr, "greenrun: --preload %s: no such file\n", preload.c_str());
            return 1;
        }
    } else {
        auto candidates = green_tools::preload_candidates(green_tools::self_dir());
        shim = green_tools::first_existing(candidates);
        if (shim.empty()) {
            std::fprintf(stderr, "greenrun: cannot find %s; looked in:\n", green_tools::kPreloadName);
            for (const auto& c : candidates) std::fprintf(stderr, "  %s\n", c.c_str());
            std::fprintf(stderr, "Install green (meson install) or pass --preload PATH.\n");
            return 1;
        }
    }

    greenrun::Verdict v = greenrun::check_program(command.front(), shim);
    if (check) {
        std::printf("program: %s\n", (v.program.empty() ? command.front() : v.program).c_str());
        for (const auto& n : v.notes) std::printf("  %s\n", n.c_str());
        std::printf("shim:    %s\n", shim.c_str());
        if (v.active) {
            std::printf("active:  yes - the shim would be loaded (GREEN_STATS=1 or --stats confirms it at exit)\n");
            return 0;
        }
        std::printf("active:  no - %s\n", v.refusal.c_str());
        return 1;
    }
    if (!v.active) {
        std::fprintf(stderr, "greenrun: %s\n", v.refusal.c_str());
        return v.refusal_status;
    }

    std::string ld_preload = preload_value(shim);
    setenv("LD_PRELOAD", ld_preload.c_str(), 1);
    if (verbose) {
        std::fprintf(stderr, "greenrun: LD_PRELOAD=%s\n", ld_preload.c_str());
        for (const char* var : {"GREEN_HUBS", "GREEN_STACK_SIZE", "GREEN_POOL_SIZE", "GREEN_STACK_GUARD", "GREEN_STATS"})
            if (const char* val = std::getenv(var)) std::fprintf(stderr, "greenrun: %s=%s\n", var, val);
        std::fprintf(stderr, "greenrun: exec %s\n", v.program.c_str());
    }
    std::fflush(nullptr);
    // A script without #! runs as execvp would run it: /bin/sh PROGRAM args...
    if (v.via_sh) {
        command.front() = v.program;
        command.insert(command.begin(), "/bin/sh");
    }
    std::vector<char*> exec_argv;
    for (auto& word : command) exec_argv.push_back(word.data());
    exec_argv.push_back(nullptr);
    execv(v.via_sh ? "/bin/sh" : v.program.c_str(), exec_argv.data());
    int err = errno;
    std::fprintf(stderr, "greenrun: cannot run %s: %s\n", v.program.c_str(), std::strerror(err));
    return err == ENOENT ? 127 : 126;
}
