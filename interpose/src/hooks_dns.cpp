// getaddrinfo, getnameinfo, gethostbyname, gethostbyname_r, gethostbyaddr run
// on the blocking pool: glibc's resolver opens sockets and polls them through
// internal aliases no preload can see, so the only place to intercept is the
// API itself. The calling fiber parks; its hub keeps running.
//
// Numeric hosts and services never reach the resolver in glibc (it parses
// them before any lookup), so those calls are made directly on the hub:
// getaddrinfo is first tried with AI_NUMERICHOST|AI_NUMERICSERV added, which
// glibc answers without I/O, and only when that says EAI_NONAME (a name
// after all) does the call go to the pool with the program's own hints; the
// numeric parse is the same code either way, so the results are glibc's.
// getnameinfo is direct when it is asked for nothing a lookup would give;
// gethostbyname* when the name is a dotted-digit or IPv6 literal, which
// glibc handles before asking NSS.
//
// gethostbyname/gethostbyaddr return a pointer into one static buffer, which
// the next call overwrites; unpatched threads race on it too. Fibers take
// turns through a fiber mutex, so each call's result is intact when it
// returns, exactly as in a program whose threads serialise these calls.
#include <netdb.h>

#include <cctype>

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

// Could glibc parse `node` as an address? Cheap pre-check only: the real call
// with AI_NUMERICHOST decides.
bool may_be_numeric_host(const char* node) noexcept {
    if (!node) return true;
    unsigned char c = static_cast<unsigned char>(node[0]);
    return std::isxdigit(c) || c == ':';
}

bool numeric_service(const char* service) noexcept {
    if (!service) return true;
    if (!*service) return false;
    for (const char* p = service; *p; ++p)
        if (!std::isdigit(static_cast<unsigned char>(*p))) return false;
    return true;
}

// Names that glibc's gethostbyname* answer before any NSS lookup: all digits
// and dots (an IPv4 literal, or HOST_NOT_FOUND), or hex digits, dots and
// colons with a colon (an IPv6 literal).
bool literal_host(const char* name) noexcept {
    if (!name || (!std::isxdigit(static_cast<unsigned char>(name[0])) && name[0] != ':')) return false;
    bool digits_dots = true, colon = false;
    for (const char* p = name; *p; ++p) {
        unsigned char c = static_cast<unsigned char>(*p);
        if (c == ':') colon = true;
        else if (!std::isxdigit(c) && c != '.') return false;
        if (!std::isdigit(c) && c != '.') digits_dots = false;
    }
    return colon || (digits_dots && std::isdigit(static_cast<unsigned char>(name[0])));
}

}  // namespace

extern "C" {

int getaddrinfo(const char* node, const char* service, const addrinfo* hints, addrinfo** res) {
    count_call(Family::Dns);
    if (!fiber_context()) return real_getaddrinfo()(node, service, hints, res);
    if ((node || service) && may_be_numeric_host(node) && numeric_service(service)) {
        addrinfo numeric{};
        if (hints) numeric = *hints;
        else numeric.ai_flags = AI_V4MAPPED | AI_ADDRCONFIG;  // glibc's default for null hints
        const int asked = numeric.ai_flags;
        numeric.ai_flags |= AI_NUMERICHOST | AI_NUMERICSERV;
        const int added = numeric.ai_flags & ~asked;
        int saved = errno;
        int r = real_getaddrinfo()(node, service, &numeric, res);
        if (r == 0) {
            // glibc copies the request's flags into every result.
            for (addrinfo* a = *res; a; a = a->ai_next) a->ai_flags &= ~added;
            return r;
        }
        if (r != EAI_NONAME) return r;
        errno = saved;
    }
    return blocking_keep_errno([&] { return real_getaddrinfo()(node, service, hints, res); });
}

int getnameinfo(const sockaddr* sa, socklen_t salen, char* host, socklen_t hostlen, char* serv, socklen_t servlen,
                int flags) {
    count_call(Family::Dns);
    if (!fiber_context()) return real_getnameinfo()(sa, salen, host, hostlen, serv, servlen, flags);
    bool host_lookup = host && hostlen && !(flags & NI_NUMERICHOST);
    bool serv_lookup = serv && servlen && !(flags & NI_NUMERICSERV);
    if (!host_lookup && !serv_lookup) return real_getnameinfo()(sa, salen, host, hostlen, serv, servlen, flags);
    return blocking_keep_errno([&] { return real_getnameinfo()(sa, salen, host, hostlen, serv, servlen, flags); });
}

int gethostbyname_r(const char* name, hostent* ret, char* buf, size_t buflen, hostent** result, int* h_errnop) {
    count_call(Family::Dns);
    if (!fiber_context() || literal_host(name)) return real_gethostbyname_r()(name, ret, buf, buflen, result, h_errnop);
    return blocking_keep_errno([&] { return real_gethostbyname_r()(name, ret, buf, buflen, result, h_errnop); });
}

hostent* gethostbyname(const char* name) {
    count_call(Family::Dns);
    if (!fiber_context()) return real_gethostbyname()(name);
    std::lock_guard guard(static_result_lock());
    if (literal_host(name)) return real_gethostbyname()(name);  // no lookup: never suspends
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
