// Where the calling thread keeps errno and libstdc++'s exception globals
// (see thread_state.hpp for why fibers save and restore them).
#include "thread_state.hpp"

#include <cxxabi.h>

#include <cerrno>

namespace green::detail {

int* errno_slot() noexcept { return &errno; }

EhGlobals* eh_globals_slot() noexcept { return reinterpret_cast<EhGlobals*>(abi::__cxa_get_globals()); }

}  // namespace green::detail
