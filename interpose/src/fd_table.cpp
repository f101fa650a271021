// See fd_table.hpp. The table is a ChunkedTable of atomic pointers, so a
// lookup on the I/O hot path is two loads and no lock.
#include "fd_table.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <new>

#include "chunked_table.hpp"
#include "fork.hpp"
#include "real.hpp"
#include "spinlock.hpp"

namespace green::interpose {

namespace {

constinit detail::ChunkedTable<std::atomic<Description*>> g_table;

// Descriptions are type-stable, like Go's poll descriptors: a dropped one
// goes to a free list and is reused, never freed, because a fiber on another
// hub may still be reading the one it looked up a moment before a close
// (a racy program, but its race must not become a use-after-free of ours).
std::atomic<std::uint32_t> g_free_lock{0};
Description* g_free = nullptr;  // linked through `next_free`, guarded by g_free_lock

// A fork child opens and closes fds too (before an exec: dup2, close).
[[gnu::constructor]] void hold_free_lock_across_fork() { detail::hold_across_fork(&g_free_lock); }

void drop(Description* d) noexcept {
    if (!d || d->refs.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
    detail::SpinGuard g(g_free_lock);
    d->next_free = g_free;
    g_free = d;
}

Description* fresh(FdKind kind, bool nonblock, bool fifo) {
    Description* d = nullptr;
    {
        detail::SpinGuard g(g_free_lock);
        if ((d = g_free)) g_free = d->next_free;
    }
    if (!d) d = new Description(kind, nonblock);
    d->kind = kind;
    d->fifo = fifo;
    d->nonblock.store(nonblock, std::memory_order_relaxed);
    d->nowait.store(NoWait::Unknown, std::memory_order_relaxed);
    d->linger.store(false, std::memory_order_relaxed);
    d->recv_timeout_ns.store(0, std::memory_order_relaxed);
    d->send_timeout_ns.store(0, std::memory_order_relaxed);
    d->next_free = nullptr;
    d->refs.store(1, std::memory_order_release);
    return d;
}

}  // namespace

void fd_adopt(int fd, FdKind kind, bool nonblock, bool fifo) noexcept {
    if (auto* s = g_table.find_or_create(fd)) drop(s->exchange(fresh(kind, nonblock, fifo)));
}

void fd_share(int oldfd, int newfd) noexcept {
    Description* d = fd_lookup(oldfd);
    auto* s = d ? g_table.find_or_create(newfd) : g_table.find(newfd);
    if (!s) return;
    if (d) d->refs.fetch_add(1, std::memory_order_relaxed);
    drop(s->exchange(d));
}

void fd_forget(int fd) noexcept {
    if (auto* s = g_table.find(fd)) drop(s->exchange(nullptr));
}

void fd_each_known(unsigned first, unsigned last, void (*fn)(int fd, Description* d)) noexcept {
    g_table.for_each_in(first, last, [fn](int fd, std::atomic<Description*>& entry) {
        if (Description* d = entry.load(std::memory_order_acquire)) fn(fd, d);
    });
}

Description* fd_lookup(int fd) noexcept {
    auto* s = g_table.find(fd);
    return s ? s->load(std::memory_order_acquire) : nullptr;
}

}  // namespace green::interpose

namespace green::interpose {

Description* fd_classify(int fd) noexcept {
    if (Description* d = fd_lookup(fd)) return d;
    return fd_reclassify(fd);
}

Description* fd_reclassify(int fd) noexcept {
    struct stat st {};
    if (fstat(fd, &st) != 0) return nullptr;
    const int fl = real_fcntl()(fd, F_GETFL);
    if (fl < 0) return nullptr;
    FdKind kind = FdKind::Pollable;
    const auto type = st.st_mode & S_IFMT;
    if (type == S_IFREG || type == S_IFDIR || type == S_IFBLK || type == S_IFLNK) kind = FdKind::Passthrough;
    else if (type == S_IFSOCK) {
        int t = 0;
        socklen_t len = sizeof t;
        if (real_getsockopt()(fd, SOL_SOCKET, SO_TYPE, &t, &len) != 0) kind = FdKind::Passthrough;
        else kind = (t == SOCK_STREAM || t == SOCK_SEQPACKET) ? FdKind::StreamSocket : FdKind::DatagramSocket;
    }
    fd_adopt(fd, kind, (fl & O_NONBLOCK) != 0, type == S_IFIFO);
    Description* d = fd_lookup(fd);
    if (d && (kind == FdKind::StreamSocket || kind == FdKind::DatagramSocket)) {
        // An inherited socket keeps the options its creator set.
        timeval tv{};
        socklen_t tl = sizeof tv;
        if (real_getsockopt()(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, &tl) == 0)
            d->recv_timeout_ns.store(static_cast<std::int64_t>(tv.tv_sec) * 1000000000 + tv.tv_usec * 1000);
        tl = sizeof tv;
        if (real_getsockopt()(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, &tl) == 0)
            d->send_timeout_ns.store(static_cast<std::int64_t>(tv.tv_sec) * 1000000000 + tv.tv_usec * 1000);
        linger lg{};
        socklen_t ll = sizeof lg;
        if (real_getsockopt()(fd, SOL_SOCKET, SO_LINGER, &lg, &ll) == 0) d->linger.store(lg.l_onoff && lg.l_linger > 0);
    }
    return d;
}

}  // namespace green::interpose
