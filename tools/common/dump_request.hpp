// Asking a running green program for its fiber dump: greenrun --dump PID,
// and greenbench, which reads a patched server's counters from the dump.
#pragma once

#include <sys/types.h>

#include <string>

namespace green_tools {

// Sends the target its GREEN_DUMP_SIGNAL after checking that green runs in
// it and catches that signal (so the signal cannot kill it). Prints one line
// on stdout (asked) or stderr (why not); returns greenrun's exit status.
int request_dump(pid_t pid);
// The same without printing: false with the reason in `why` (one line);
// the signal sent in *sent. greenbench uses it to read a server's counters.
bool send_dump_signal(pid_t pid, std::string& why, int* sent = nullptr);

}  // namespace green_tools
