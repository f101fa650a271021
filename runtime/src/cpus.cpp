// See cpus.hpp. A quota of 150000/100000 means 1.5 CPUs of time per period:
// two hubs can use it (each runs part of the time), so the quota rounds up.
#include "cpus.hpp"

#include <fcntl.h>
#include <sched.h>
#include <sys/syscall.h>

#include <cstdlib>
#include <cstring>

#include "os.hpp"

namespace green::detail {

namespace {

// The whole of a small file, NUL-terminated; false if unreadable.
bool read_small_file(const char* path, char* buf, std::size_t size) noexcept {
    long fd = os::raw_syscall6(SYS_openat, AT_FDCWD, reinterpret_cast<long>(path), O_RDONLY | O_CLOEXEC, 0, 0, 0);
    if (fd < 0) return false;
    std::size_t used = 0;
    while (used + 1 < size) {
        long n = os::raw_syscall6(SYS_read, fd, reinterpret_cast<long>(buf + used), static_cast<long>(size - 1 - used),
                                  0, 0, 0);
        if (n <= 0) break;
        used += static_cast<std::size_t>(n);
    }
    os::raw_syscall6(SYS_close, fd, 0, 0, 0, 0, 0);
    buf[used] = '\0';
    return used > 0;
}

unsigned affinity_cpus() noexcept {
    // Large enough for 8192 CPUs; the raw syscall returns the kernel's mask size.
    static unsigned long mask[128];
    long n = os::raw_syscall6(SYS_sched_getaffinity, 0, sizeof mask, reinterpret_cast<long>(mask), 0, 0, 0);
    if (n <= 0) return 1;
    unsigned count = 0;
    for (long i = 0; i < n / static_cast<long>(sizeof(unsigned long)); ++i) count += __builtin_popcountl(mask[i]);
    return count ? count : 1;
}

// "max 100000" -> 0 (no limit); "150000 100000" -> 2.
unsigned quota_cpus(const char* cpu_max) noexcept {
    if (std::strncmp(cpu_max, "max", 3) == 0) return 0;
    char* end = nullptr;
    unsigned long long quota = std::strtoull(cpu_max, &end, 10);
    if (end == cpu_max || *end != ' ') return 0;
    unsigned long long period = std::strtoull(end + 1, nullptr, 10);
    if (quota == 0 || period == 0) return 0;
    unsigned long long cpus = (quota + period - 1) / period;
    return cpus > 4096 ? 4096 : static_cast<unsigned>(cpus);
}

// The tightest cpu.max from this process's cgroup up to the root; 0 if none.
unsigned cgroup_cpus() noexcept {
    char self[512];
    if (!read_small_file("/proc/self/cgroup", self, sizeof self)) return 0;
    const char* line = std::strstr(self, "0::/");  // the cgroup v2 line
    if (!line || (line != self && line[-1] != '\n')) return 0;
    char path[640] = "/sys/fs/cgroup";
    std::size_t base = std::strlen(path);
    const char* rel = line + 3;
    std::size_t len = std::strcspn(rel, "\n");
    if (base + len + sizeof "/cpu.max" > sizeof path) return 0;
    std::memcpy(path + base, rel, len);
    std::size_t dir_end = base + len;
    while (dir_end > base && path[dir_end - 1] == '/') --dir_end;
    unsigned best = 0;
    for (;;) {
        std::memcpy(path + dir_end, "/cpu.max", sizeof "/cpu.max");
        char text[64];
        if (read_small_file(path, text, sizeof text)) {
            unsigned q = quota_cpus(text);
            if (q && (!best || q < best)) best = q;
        }
        if (dir_end <= base) break;  // the root cgroup has no cpu.max: done
        while (dir_end > base && path[dir_end - 1] != '/') --dir_end;
        if (dir_end > base) --dir_end;  // drop the slash too
    }
    return best;
}

}  // namespace

unsigned usable_cpus() noexcept {
    unsigned cpus = affinity_cpus();
    unsigned quota = cgroup_cpus();
    if (quota && quota < cpus) cpus = quota;
    return cpus ? cpus : 1;
}

}  // namespace green::detail
