// The hub registry's lock and list, for the few files that walk every hub
// under it themselves (the deadlock detector). Everyone else uses
// for_each_hub() (hub.hpp).
//
// A hub is registered from its creation until its thread ends; holding the
// registry lock keeps every registered hub alive, because a hub leaves the
// registry before its thread may retire it. The deadlock detector keeps its
// own state (the stuck count, the last report) under the same lock, so that
// "every registered hub is stuck" is one consistent observation. Where the
// lock stands among the runtime's other locks: hub.hpp.
#pragma once

#include <atomic>
#include <cstdint>
#include <span>

namespace green::detail {

class Hub;

std::atomic<std::uint32_t>& registry_lock() noexcept;
// Every registered hub. Caller holds registry_lock().
std::span<Hub* const> registered_hubs_locked() noexcept;

}  // namespace green::detail
