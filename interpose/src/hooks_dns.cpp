// getaddrinfo, getnameinfo, gethostbyname, gethostbyname_r, gethostbyaddr run
// on the blocking pool: glibc's resolver opens sockets and polls them through
// internal aliases no preload can see, so the only place to intercept is the
// API itself. The calling fiber parks; its hub keeps running.
//
// gethostbyname/gethostbyaddr return a pointer into one static buffer, which
// the next call overwrites; unpatched threads race on it too. Fibers take
// turns through a fiber mutex, so each call's result is intact when it
// returns, exactly as in a program whose threads serialise these calls.
#include <netdb.h>

#include <green/blocking.hpp>
#include <green/sync.hpp>

#include <mutex>

#include "hook_context.hpp"
#include "real.hpp"

using namespace green;
using namespace green::interpose;

namespace {

green::Mutex& static_result_lock() {
    static green::Mutex* m = new green::Mutex();
    return *m;
}

}  // namespace

extern "C" {

int getaddrinfo(const char* node, const char* service, const addrinfo* hints, addrinfo** res) {
    count_call(Family::Dns);
    if (!fiber_context()) return real_getaddrinfo()(node, service, hints, res);
    return blocking_keep_errno([&] { return real_getaddrinfo()(node, service, hints, res); });
}

int getnameinfo(const sockaddr* sa, socklen_t salen, char* host, socklen_t hostlen, char* serv, socklen_t servlen,
                int flags) {
    count_call(Family::Dns);
    if (!fiber_context()) return real_getnameinfo()(sa, salen, host, hostlen, serv, servlen, flags);
    return blocking_keep_errno([&] { return real_getnameinfo()(sa, salen, host, hostlen, serv, servlen, flags); });
}

int gethostbyname_r(const char* name, hostent* ret, char* buf, size_t buflen, hostent** result, int* h_errnop) {
    count_call(Family::Dns);
    if (!fiber_context()) return real_gethostbyname_r()(name, ret, buf, buflen, result, h_errnop);
    return blocking_keep_errno([&] { return real_gethostbyname_r()(name, ret, buf, buflen, result, h_errnop); });
}

hostent* gethostbyname(const char* name) {
    count_call(Family::Dns);
    if (!fiber_context()) return real_gethostbyname()(name);
    std::lock_guard guard(static_result_lock());
    int err = 0;
    hostent* r = blocking_keep_errno([&] {
        hostent* h = real_gethostbyname()(name);
        err = h_errno;  // thread-local: carry it back to the caller's thread
        return h;
    });
    h_errno = err;
    return r;
}

hostent* gethostbyaddr(const void* addr, socklen_t len, int type) {
    count_call(Family::Dns);
    if (!fiber_context()) return real_gethostbyaddr()(addr, len, type);
    std::lock_guard guard(static_result_lock());
    int err = 0;
    hostent* r = blocking_keep_errno([&] {
        hostent* h = real_gethostbyaddr()(addr, len, type);
        err = h_errno;
        return h;
    });
    h_errno = err;
    return r;
}

}  // extern "C"
