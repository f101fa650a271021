// A table indexed by fd number, in chunks allocated on first use, so that it
// costs nothing for numbers never used and a read takes no lock: two loads.
// The runtime's per-fd facts (io.cpp) and the shim's per-fd descriptions
// (interpose/src/fd_table.cpp) are such tables.
//
// Invariants: a chunk, once published, is never freed or moved, so a pointer
// to an entry stays valid for the life of the process. A chunk's entries are
// value-initialised before it is published with a release compare-exchange,
// and readers load chunk pointers with acquire, so whoever finds a chunk sees
// its entries' initial state; what happens to an entry afterwards is the
// entry type's business (atomics, in both tables). Two threads that create
// the same chunk at once: one publishes, the other frees its copy. The table
// itself is constant-initialised (all chunks null), so it works before any
// constructor has run, as the shim's hooks need.
#pragma once

#include <atomic>
#include <new>

namespace green::detail {

template <class T, int kChunkBits = 12, int kChunks = 1 << 10>  // indexes below 4M by default
class ChunkedTable {
public:
    static constexpr unsigned kPerChunk = 1u << kChunkBits;

    // The entry for `index`, or null: out of range, or its chunk never made.
    T* find(int index) const noexcept {
        if (index < 0) return nullptr;
        const unsigned chunk = static_cast<unsigned>(index) >> kChunkBits;
        if (chunk >= static_cast<unsigned>(kChunks)) return nullptr;
        T* c = chunks_[chunk].load(std::memory_order_acquire);
        return c ? &c[static_cast<unsigned>(index) & (kPerChunk - 1)] : nullptr;
    }

    // The entry for `index`, making its chunk if needed; null when out of
    // range or out of memory.
    T* find_or_create(int index) noexcept {
        if (index < 0) return nullptr;
        const unsigned chunk = static_cast<unsigned>(index) >> kChunkBits;
        if (chunk >= static_cast<unsigned>(kChunks)) return nullptr;
        T* c = chunks_[chunk].load(std::memory_order_acquire);
        if (!c) {
            T* fresh = new (std::nothrow) T[kPerChunk]();
            if (!fresh) return nullptr;
            if (chunks_[chunk].compare_exchange_strong(c, fresh, std::memory_order_acq_rel)) c = fresh;
            else delete[] fresh;
        }
        return &c[static_cast<unsigned>(index) & (kPerChunk - 1)];
    }

    // fn(index, entry) for every index in [first, last] whose chunk exists;
    // chunks never made are skipped whole, so a sweep up to ~0u stays cheap.
    template <class Fn>
    void for_each_in(unsigned first, unsigned last, Fn&& fn) const {
        const unsigned end = last >> kChunkBits;
        for (unsigned chunk = first >> kChunkBits; chunk < static_cast<unsigned>(kChunks) && chunk <= end; ++chunk) {
            T* c = chunks_[chunk].load(std::memory_order_acquire);
            if (!c) continue;
            const unsigned base = chunk * kPerChunk;
            for (unsigned i = first > base ? first - base : 0; i < kPerChunk && base + i <= last; ++i)
                fn(static_cast<int>(base + i), c[i]);
        }
    }

private:
    std::atomic<T*> chunks_[kChunks]{};
};

}  // namespace green::detail
