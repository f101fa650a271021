// See shim_fds.hpp. The list is tiny (two fds per hub, one for GREEN_STATS)
// and changes only when hubs are made or after fork, so a spinlock and a
// fixed array suffice.
#include "shim_fds.hpp"

#include <fcntl.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>

#include "fd_table.hpp"
#include "fork.hpp"
#include "hub.hpp"
#include "os.hpp"
#include "real.hpp"
#include "spinlock.hpp"

namespace green::interpose {

namespace {

constexpr int kMax = 256;
std::atomic<std::uint32_t> g_lock{0};

// A fork child's close_range and dup2 hooks read the list.
[[gnu::constructor]] void hold_lock_across_fork() { detail::hold_across_fork(&g_lock); }
int g_fds[kMax];
int g_count = 0;

// The lowest number a shim fd may take: near the top of the soft limit,
// capped so a huge limit does not make the kernel grow the fd table to it.
int high_base() noexcept {
    rlimit lim{};
    long cap = 1024;
    if (getrlimit(RLIMIT_NOFILE, &lim) == 0) cap = lim.rlim_cur == RLIM_INFINITY ? 65536 : static_cast<long>(lim.rlim_cur);
    cap = std::min(cap, 65536L);
    return static_cast<int>(cap >= 256 ? cap - 64 : cap / 2);
}

}  // namespace

bool runtime_caller() noexcept {
    if (detail::os::creating_runtime_fds()) return true;
    detail::Hub* h = detail::Hub::current_if_any();
    return h && h->in_scheduler();
}

int adopt_shim_fd(int fd) noexcept {
    if (fd < 0) return fd;
    int moved = real_fcntl()(fd, F_DUPFD_CLOEXEC, high_base());
    if (moved >= 0) {
        real_close()(fd);
        fd = moved;
    } else {
        real_fcntl()(fd, F_SETFD, FD_CLOEXEC);
    }
    fd_adopt(fd, FdKind::Shim, false);
    detail::SpinGuard g(g_lock);
    if (g_count < kMax) {
        int* at = std::lower_bound(g_fds, g_fds + g_count, fd);
        if (at == g_fds + g_count || *at != fd) {
            std::move_backward(at, g_fds + g_count, g_fds + g_count + 1);
            *at = fd;
            ++g_count;
        }
    }
    return fd;
}

void forget_shim_fd(int fd) noexcept {
    detail::SpinGuard g(g_lock);
    int* at = std::lower_bound(g_fds, g_fds + g_count, fd);
    if (at != g_fds + g_count && *at == fd) {
        std::move(at + 1, g_fds + g_count, at);
        --g_count;
    }
}

int shim_fd_list(int* out, int max) noexcept {
    detail::SpinGuard g(g_lock);
    int n = std::min(max, g_count);
    std::copy(g_fds, g_fds + n, out);
    return n;
}

}  // namespace green::interpose
