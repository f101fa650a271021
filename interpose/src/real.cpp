// See real.hpp.
#include "real.hpp"

#include "os.hpp"

#include <dlfcn.h>

#include <cstdlib>
#include <cstring>

namespace green::interpose {

void* resolve_next(const char* name) noexcept {
    void* fn = dlsym(RTLD_NEXT, name);
    if (!fn) {
        // Nothing sensible can continue: every call of this name would crash.
        detail::os::write_stderr("green: cannot resolve the real ");
        detail::os::write_stderr(name);
        detail::os::write_stderr("\n");
        std::abort();
    }
    return fn;
}

}  // namespace green::interpose
