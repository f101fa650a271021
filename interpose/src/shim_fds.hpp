// The runtime's own fds, kept out of the program's way.
//
// libev opens an epoll fd and an eventfd per hub, and GREEN_STATS keeps a
// copy of stderr. Unpatched, none of these exist: the program's first open()
// returns 3, a daemon may close every fd from 3 to 1023, and `exec 3>file`
// must not land on one of ours. So each such fd is moved, as it is created,
// to the top of RLIMIT_NOFILE (close-on-exec), and to the program it does not
// exist: close() on it fails with EBADF, dup2/dup3 onto it fail with EBADF
// (the number is taken; it cannot be given to the program without breaking
// the hub), close_range() skips it, fcntl() on it fails with EBADF.
//
// A call is the runtime's own when it comes from a hub's scheduler (libev)
// or while a hub is being constructed (os::RuntimeFdScope).
#pragma once

namespace green::interpose {

bool runtime_caller() noexcept;
// Moves a just-created runtime fd to the top of the fd range, close-on-exec,
// and records it; returns the new number (or `fd` if it cannot move).
int adopt_shim_fd(int fd) noexcept;
// Copies of the recorded shim fds, ascending; returns how many.
int shim_fd_list(int* out, int max) noexcept;
void forget_shim_fd(int fd) noexcept;

}  // namespace green::interpose
