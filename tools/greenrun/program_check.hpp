// Would LD_PRELOAD reach this program? greenrun asks before exec'ing it, and
// --check prints the answer.
//
// The dynamic loader honours LD_PRELOAD only where it runs and only outside
// secure mode: a statically linked program never runs the loader, and a
// setuid/setgid (or file-capability) program that changes credentials runs it
// in secure mode, which drops preload paths with a slash. Interpreted scripts
// are judged by their interpreter, which is what the kernel executes.
#pragma once

#include <string>
#include <vector>

namespace greenrun {

struct Verdict {
    bool active = false;             // the shim would be loaded
    int refusal_status = 0;          // 126 (cannot apply / not executable), 127 (not found)
    std::string program;             // the file exec would run
    bool via_sh = false;             // no ELF, no #!: run by /bin/sh, as execvp/env/nice do
    std::vector<std::string> notes;  // what was found, one line each
    std::string refusal;             // why not, when !active
};

// `command` is argv[0] of the program as the user wrote it (searched in PATH
// like execvp when it has no slash); `preload` the library greenrun would set.
Verdict check_program(const std::string& command, const std::string& preload);

// Searches PATH like execvp; returns `command` itself when it has a slash,
// and "" when nothing executable is found.
std::string resolve_in_path(const std::string& command);

}  // namespace greenrun
