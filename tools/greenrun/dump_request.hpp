// greenrun --dump PID: ask a running green program for its fiber dump.
#pragma once

#include <sys/types.h>

namespace greenrun {

// Sends the target its GREEN_DUMP_SIGNAL after checking that green runs in
// it and catches that signal (so the signal cannot kill it). Prints one line
// on stdout (asked) or stderr (why not); returns greenrun's exit status.
int request_dump(pid_t pid);

}  // namespace greenrun
