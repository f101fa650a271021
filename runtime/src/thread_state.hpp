// The per-thread state every fiber keeps as its own even when it shares its
// hub thread's TLS: errno, and libstdc++'s exception globals (the stack of
// caught exceptions and the uncaught count behind `throw;`,
// std::current_exception() and std::uncaught_exceptions()). A fiber that
// suspends inside a catch block, or between a failing call and reading
// errno, finds both as it left them.
//
// The switch path saves them from the hub thread's TLS when such a fiber
// switches out and puts them back when it switches in; the slots' addresses
// are taken once per hub thread, so this is a few loads and stores. Fibers
// with a TLS block of their own (fiber_tls.hpp) need none of it.
#pragma once

namespace green::detail {

// libstdc++'s struct __cxa_eh_globals (CXXABI_1.3), opaque in <cxxabi.h>.
struct EhGlobals {
    void* caught_exceptions = nullptr;
    unsigned int uncaught_exceptions = 0;
};

// The calling thread's slots, in its current TLS.
int* errno_slot() noexcept;
EhGlobals* eh_globals_slot() noexcept;

}  // namespace green::detail
