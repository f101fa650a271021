// Per-fiber TLS: the one file that knows glibc's private TLS interface.
//
// What a new glibc thread gets, and how a fiber gets the same:
//   static TLS + DTV   ld.so's _dl_allocate_tls(mem) lays every loaded
//                      module's initial image below the thread pointer in
//                      `mem` and gives the block its own DTV, so dlopen'ed
//                      modules get per-fiber blocks through __tls_get_addr.
//                      _dl_deallocate_tls(tp, false) frees the DTV and those.
//   thread descriptor  glibc's `struct pthread` sits at the thread pointer
//                      and is read by glibc itself through %fs (tid for lock
//                      owners, stack guard, pointer guard, cancel state). A
//                      fiber gets a copy of its hub thread's, with every word
//                      that pointed into the original moved to point into the
//                      copy (self pointers, the empty robust list, the
//                      first-level key block). The guards are the same in
//                      every thread; the tid is the hub thread's, and is
//                      rewritten when the fiber moves to another hub
//                      (fiber_tls_rehome).
//   libc's own TLS     fresh (initial image), as for a thread, except the two
//                      words of malloc's per-thread state (tcache, arena),
//                      which are the hub thread's: glibc frees a thread's
//                      cache only at thread exit through a function it does
//                      not export, so a per-fiber cache would leak per fiber.
//                      Fibers of one OS thread never run at the same time, so
//                      sharing the cache is as safe as one thread using it.
//                      The two words are found at start-up by running
//                      __libc_malloc once on a scratch block and diffing
//                      libc's TLS against its initial image.
//   ctype tables       set by __ctype_init(), as glibc's start_thread does.
//   thread_local dtors registered per block (libc's TLS list) and run by
//                      __call_tls_dtors on the fiber when it ends.
//   runtime's TLS      this library's own block is copied from the hub
//                      thread's, so the runtime finds the same hub from any
//                      context of that thread (its TLS is per OS thread and
//                      written only before the thread's first fiber exists).
//
// Every private symbol and layout fact is checked once (fiber_tls_available);
// on any mismatch, or a glibc other than the one this was built against, the
// feature is off with a reason, never a guess.
#include "fiber_tls.hpp"

// Before <link.h>: its <elf.h> defines EV_NONE as a macro, which <ev.h> uses
// as an enumerator.
#include "hub.hpp"

#include <dlfcn.h>
#include <gnu/libc-version.h>
#include <link.h>
#include <sys/auxv.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define GREEN_TLS_SANITIZED 1
#endif

extern "C" void* __libc_malloc(std::size_t) noexcept;
extern "C" void __libc_free(void*) noexcept;

namespace green::detail {

namespace {

using AllocateTls = void* (*)(void*);
using InitTls = void* (*)(void*, bool);
using DeallocateTls = void (*)(void*, bool);
using GetStaticInfo = void (*)(std::size_t*, std::size_t*);
using VoidFn = void (*)();

struct Module {
    std::uintptr_t offset = 0;  // thread pointer minus the block's start
    std::size_t size = 0;       // the block's memsz
    const unsigned char* image = nullptr;
    std::size_t image_size = 0;  // filesz
};

struct TlsLayout {
    AllocateTls allocate = nullptr;
    InitTls init = nullptr;
    DeallocateTls deallocate = nullptr;
    VoidFn call_tls_dtors = nullptr;
    VoidFn ctype_init = nullptr;
    std::size_t static_size = 0;  // static TLS + descriptor
    std::size_t static_align = 0;
    std::size_t descriptor_size = 0;  // sizeof(struct pthread)
    std::size_t tid_offset = 0;       // of struct pthread's tid
    Module libc;
    Module runtime;
    std::uintptr_t malloc_words[2] = {};  // offsets in libc's block
    int malloc_word_count = 0;
    std::uintptr_t resp_offset = 0;  // __resp's offset in libc's block
    bool wrfsbase = false;
    const char* unavailable = "not checked";
};

TlsLayout g_layout;
std::once_flag g_checked;

constexpr long kArchSetFs = 0x1002;  // ARCH_SET_FS (<asm/prctl.h> clashes with <ev.h>)

void raw_set_fs(void* tp) noexcept {
    long ret;
    asm volatile("syscall"
                 : "=a"(ret)
                 : "0"(static_cast<long>(SYS_arch_prctl)), "D"(kArchSetFs), "S"(tp)
                 : "rcx", "r11", "memory");
    (void)ret;
}

struct FindModules {
    const void* libc_anchor;
    const void* runtime_anchor;
    void* tp;
    Module* libc;
    Module* runtime;
};

int find_module(struct dl_phdr_info* info, std::size_t, void* data) {
    auto* find = static_cast<FindModules*>(data);
    if (info->dlpi_tls_modid == 0 || !info->dlpi_tls_data) return 0;
    for (int i = 0; i < info->dlpi_phnum; ++i) {
        const ElfW(Phdr)& ph = info->dlpi_phdr[i];
        if (ph.p_type != PT_TLS) continue;
        auto start = reinterpret_cast<std::uintptr_t>(info->dlpi_tls_data);
        Module m;
        m.offset = reinterpret_cast<std::uintptr_t>(find->tp) - start;
        m.size = ph.p_memsz;
        m.image = reinterpret_cast<const unsigned char*>(info->dlpi_addr + ph.p_vaddr);
        m.image_size = ph.p_filesz;
        for (auto [anchor, out] : {std::pair{find->libc_anchor, find->libc}, std::pair{find->runtime_anchor, find->runtime}}) {
            auto a = reinterpret_cast<std::uintptr_t>(anchor);
            if (a >= start && a < start + m.size) *out = m;
        }
    }
    return 0;
}

// The copy of `src`'s thread descriptor for the block whose thread pointer
// is `tp` (its DTV already installed by _dl_allocate_tls).
void copy_descriptor(void* tp, const void* src) noexcept {
    auto* words = static_cast<std::uintptr_t*>(tp);
    std::uintptr_t dtv = words[1];
    std::memcpy(tp, src, g_layout.descriptor_size);
    auto lo = reinterpret_cast<std::uintptr_t>(src);
    auto hi = lo + g_layout.descriptor_size;
    auto delta = reinterpret_cast<std::uintptr_t>(tp) - lo;
    for (std::size_t i = 0; i < g_layout.descriptor_size / sizeof(std::uintptr_t); ++i)
        if (words[i] >= lo && words[i] < hi) words[i] += delta;
    words[1] = dtv;
}

unsigned char* block_of(void* tp, const Module& m) noexcept { return static_cast<unsigned char*>(tp) - m.offset; }

// Lays a block out in `raw` (static_size + static_align + 16 zeroed bytes);
// returns its thread pointer.
void* lay_out(void* raw) noexcept {
    auto base = reinterpret_cast<std::uintptr_t>(raw) + 16;
    std::uintptr_t tp = (base + g_layout.static_size + g_layout.static_align - g_layout.descriptor_size) &
                        ~(g_layout.static_align - 1);
    // The allocation's start, just below the static blocks, for destroy().
    reinterpret_cast<void**>(tp - (g_layout.static_size - g_layout.descriptor_size))[-1] = raw;
    return reinterpret_cast<void*>(tp);
}

std::size_t raw_size() noexcept { return g_layout.static_size + g_layout.static_align + 16; }

const char* check() noexcept {
#if defined(GREEN_TLS_SANITIZED)
    return "the sanitizer runtime keeps its own per-thread state in TLS";
#else
    char built[32];
    std::snprintf(built, sizeof built, "%d.%d", __GLIBC__, __GLIBC_MINOR__);
    if (std::strcmp(built, gnu_get_libc_version()) != 0) return "glibc differs from the version green was built against";
    // ld.so is always in the global scope; a handle opened on it by name
    // does not find its private symbols.
    void* ld = RTLD_DEFAULT;
    void* libc = dlopen("libc.so.6", RTLD_LAZY | RTLD_NOLOAD);
    if (!libc) return "libc.so.6 not found";
    auto* get_info = reinterpret_cast<GetStaticInfo>(dlvsym(ld, "_dl_get_tls_static_info", "GLIBC_PRIVATE"));
    g_layout.allocate = reinterpret_cast<AllocateTls>(dlvsym(ld, "_dl_allocate_tls", "GLIBC_PRIVATE"));
    g_layout.deallocate = reinterpret_cast<DeallocateTls>(dlvsym(ld, "_dl_deallocate_tls", "GLIBC_PRIVATE"));
    g_layout.init = reinterpret_cast<InitTls>(dlvsym(ld, "_dl_allocate_tls_init", "GLIBC_PRIVATE"));
    g_layout.call_tls_dtors = reinterpret_cast<VoidFn>(dlvsym(libc, "__call_tls_dtors", "GLIBC_PRIVATE"));
    g_layout.ctype_init = reinterpret_cast<VoidFn>(dlvsym(libc, "__ctype_init", "GLIBC_PRIVATE"));
    auto* sizeof_pthread = static_cast<const std::uint32_t*>(dlvsym(libc, "_thread_db_sizeof_pthread", "GLIBC_PRIVATE"));
    // libthread_db's description of the field: {bits, count, offset}.
    auto* tid_field = static_cast<const std::uint32_t*>(dlvsym(libc, "_thread_db_pthread_tid", "GLIBC_PRIVATE"));
    auto* resp = static_cast<void**>(dlvsym(libc, "__resp", "GLIBC_PRIVATE"));
    if (!get_info || !g_layout.allocate || !g_layout.deallocate || !g_layout.init || !g_layout.call_tls_dtors || !g_layout.ctype_init ||
        !sizeof_pthread || !resp || !tid_field)
        return "a private glibc symbol it needs is missing";
    get_info(&g_layout.static_size, &g_layout.static_align);
    g_layout.descriptor_size = *sizeof_pthread;
    void* tp = current_thread_pointer();
    g_layout.tid_offset = tid_field[2];
    pid_t tid_seen = 0;
    if (tid_field[0] != 8 * sizeof(pid_t) || g_layout.tid_offset + sizeof(pid_t) > g_layout.descriptor_size)
        return "the thread descriptor's tid is not where expected";
    std::memcpy(&tid_seen, static_cast<const char*>(tp) + g_layout.tid_offset, sizeof tid_seen);
    if (tid_seen != static_cast<pid_t>(syscall(SYS_gettid))) return "the thread descriptor's tid is not where expected";
    auto* self = static_cast<void* const*>(tp);
    // tcbhead_t: { tcb, dtv, self, ... } with tcb == self == the thread pointer.
    if (self[0] != tp || self[2] != tp) return "the thread descriptor's layout is not the expected one";
    if (g_layout.static_align == 0 || (g_layout.static_align & (g_layout.static_align - 1)) != 0 ||
        g_layout.static_size <= g_layout.descriptor_size || g_layout.descriptor_size % sizeof(void*) != 0)
        return "the static TLS size reported by ld.so is not usable";
    FindModules find{&errno, Hub::tls_anchor(), tp, &g_layout.libc, &g_layout.runtime};
    dl_iterate_phdr(&find_module, &find);
    if (!g_layout.libc.size || !g_layout.runtime.size) return "libc's or the runtime's TLS block was not found";
    auto resp_addr = reinterpret_cast<std::uintptr_t>(resp);
    auto libc_start = reinterpret_cast<std::uintptr_t>(tp) - g_layout.libc.offset;
    if (resp_addr < libc_start || resp_addr + sizeof(void*) > libc_start + g_layout.libc.size)
        return "__resp is not in libc's TLS block";
    g_layout.resp_offset = resp_addr - libc_start;

    unsigned long hwcap2 = getauxval(AT_HWCAP2);
    g_layout.wrfsbase = (hwcap2 & (1ul << 1)) != 0;  // HWCAP2_FSGSBASE
    if (const char* preload = std::getenv("LD_PRELOAD"); preload && std::strstr(preload, "vgpreload"))
        g_layout.wrfsbase = false;  // valgrind emulates arch_prctl, not wrfsbase

    // Which words of libc's block does malloc make per thread? Run it once on
    // a scratch block and compare with the initial image.
    void* raw = std::calloc(1, raw_size());
    if (!raw) return "out of memory";
    void* scratch = lay_out(raw);
    g_layout.allocate(scratch);
    copy_descriptor(scratch, tp);
    set_thread_pointer(scratch);
    __libc_free(__libc_malloc(64));
    set_thread_pointer(tp);
    const unsigned char* libc_block = block_of(scratch, g_layout.libc);
    for (std::size_t off = 0; off + sizeof(std::uintptr_t) <= g_layout.libc.size; off += sizeof(std::uintptr_t)) {
        std::uintptr_t now, initial = 0;
        std::memcpy(&now, libc_block + off, sizeof now);
        if (off + sizeof initial <= g_layout.libc.image_size) std::memcpy(&initial, g_layout.libc.image + off, sizeof initial);
        if (now == initial) continue;
        if (g_layout.malloc_word_count == 2) return "malloc changes more per-thread state than expected";
        g_layout.malloc_words[g_layout.malloc_word_count++] = off;
    }
    // The scratch block's malloc cache stays allocated (once per process).
    g_layout.deallocate(scratch, false);
    std::free(raw);
    return nullptr;
#endif
}

}  // namespace

bool fiber_tls_available() noexcept { return fiber_tls_unavailable_reason() == nullptr; }

const char* fiber_tls_unavailable_reason() noexcept {
    std::call_once(g_checked, [] { g_layout.unavailable = check(); });
    return g_layout.unavailable;
}

void set_thread_pointer(void* tp) noexcept {
    if (g_layout.wrfsbase) asm volatile("wrfsbase %0" ::"r"(tp) : "memory");
    else raw_set_fs(tp);
}

namespace {

// What a fresh block needs from the OS thread that will run it, once ld.so
// has laid out the initial images and the DTV.
void adopt_thread(void* tp, void* owner_tp) noexcept {
    copy_descriptor(tp, owner_tp);
    unsigned char* libc_block = block_of(tp, g_layout.libc);
    const unsigned char* owner_libc = block_of(owner_tp, g_layout.libc);
    for (int i = 0; i < g_layout.malloc_word_count; ++i)
        std::memcpy(libc_block + g_layout.malloc_words[i], owner_libc + g_layout.malloc_words[i], sizeof(void*));
    // A thread's resolver state lives in its descriptor (__resp points there);
    // the main thread's is the global _res, which a fiber then shares.
    std::uintptr_t owner_resp;
    std::memcpy(&owner_resp, owner_libc + g_layout.resp_offset, sizeof owner_resp);
    auto lo = reinterpret_cast<std::uintptr_t>(owner_tp);
    if (owner_resp >= lo && owner_resp < lo + g_layout.descriptor_size) {
        std::uintptr_t mine = owner_resp - lo + reinterpret_cast<std::uintptr_t>(tp);
        std::memcpy(libc_block + g_layout.resp_offset, &mine, sizeof mine);
    }
    std::memcpy(block_of(tp, g_layout.runtime), block_of(owner_tp, g_layout.runtime), g_layout.runtime.size);
    // __ctype_init writes the block it runs on: run it there, briefly.
    void* here = current_thread_pointer();
    set_thread_pointer(tp);
    g_layout.ctype_init();
    set_thread_pointer(here);
}

// glibc's dtv_t: slot -1 holds the DTV's length, slots 1.. a module's block
// and what to free for it (set by __tls_get_addr for dynamic modules).
union DtvSlot {
    std::size_t counter;
    struct {
        void* val;
        void* to_free;
    } pointer;
};

}  // namespace

void* fiber_tls_create(void* owner_tp) noexcept {
    void* raw = std::calloc(1, raw_size());
    if (!raw) return nullptr;
    void* tp = lay_out(raw);
    if (!g_layout.allocate(tp)) {
        std::free(raw);
        return nullptr;
    }
    adopt_thread(tp, owner_tp);
    return tp;
}

void* fiber_tls_recycle(void* tp, void* owner_tp) noexcept {
    auto* dtv = static_cast<DtvSlot**>(tp)[1];
    for (std::size_t i = 1; i <= dtv[-1].counter; ++i) {
        std::free(dtv[i].pointer.to_free);
        dtv[i].pointer.to_free = nullptr;
    }
    g_layout.init(tp, true);
    adopt_thread(tp, owner_tp);
    return tp;
}

void fiber_tls_rehome(void* tp, void* owner_tp) noexcept {
    std::memcpy(static_cast<char*>(tp) + g_layout.tid_offset, static_cast<const char*>(owner_tp) + g_layout.tid_offset,
                sizeof(pid_t));
    unsigned char* libc_block = block_of(tp, g_layout.libc);
    const unsigned char* owner_libc = block_of(owner_tp, g_layout.libc);
    for (int i = 0; i < g_layout.malloc_word_count; ++i)
        std::memcpy(libc_block + g_layout.malloc_words[i], owner_libc + g_layout.malloc_words[i], sizeof(void*));
    std::memcpy(block_of(tp, g_layout.runtime), block_of(owner_tp, g_layout.runtime), g_layout.runtime.size);
}

void fiber_tls_run_destructors() noexcept { g_layout.call_tls_dtors(); }

void fiber_tls_destroy(void* tp) noexcept {
    g_layout.deallocate(tp, false);
    void* raw = reinterpret_cast<void**>(reinterpret_cast<std::uintptr_t>(tp) -
                                         (g_layout.static_size - g_layout.descriptor_size))[-1];
    std::free(raw);
}

}  // namespace green::detail
