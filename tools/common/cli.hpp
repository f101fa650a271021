// How greenrun and greenbench end a command line that CLI11 did not let
// through: --help and --version print and exit 0; any other error is one
// line that names the tool, a line that says where to look, and status 2,
// which tests and scripts tell apart from the statuses the tools themselves
// return.
#pragma once

#include <CLI/CLI.hpp>

#include <cstdio>
#include <optional>

namespace green_tools {

// Parses argv into `app`. Returns the status to exit with when the command
// line ended the program (help, version, an error), nothing when it goes on.
inline std::optional<int> parse_command_line(CLI::App& app, int argc, char** argv, const char* hint) {
    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForVersion& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        std::fprintf(stderr, "%s: %s\n%s\n", app.get_name().c_str(), e.what(), hint);
        return 2;
    }
    return std::nullopt;
}

}  // namespace green_tools
