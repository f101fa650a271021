// How many CPUs this process may actually use, for GREEN_HUBS=auto: more hubs
// than that only add cross-thread wake-ups and preemption between hubs.
#pragma once

namespace green::detail {

// The smaller of the affinity mask's CPU count (sched_getaffinity) and the
// cgroup v2 CPU quota (cpu.max of this cgroup and its ancestors, rounded up);
// at least 1. Start-up only: reads files with raw syscalls, never the shim's
// hooks.
unsigned usable_cpus() noexcept;

}  // namespace green::detail
