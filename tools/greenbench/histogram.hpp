// Latency histogram: log-linear buckets (the top 7 significant bits of the
// value kept), so any recorded value is known within 1/64 (1.6%) from 1 ns to
// hours, in 30 KiB and with one array increment per sample. Min and max are
// kept exactly.
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cstdint>

namespace greenbench {

class Histogram {
public:
    void record(std::uint64_t v) noexcept {
        ++counts_[index(v)];
        ++total_;
        max_ = std::max(max_, v);
        min_ = std::min(min_, v);
    }
    void merge(const Histogram& o) noexcept {
        for (std::size_t i = 0; i < counts_.size(); ++i) counts_[i] += o.counts_[i];
        total_ += o.total_;
        max_ = std::max(max_, o.max_);
        min_ = std::min(min_, o.min_);
    }
    std::uint64_t count() const noexcept { return total_; }
    std::uint64_t max() const noexcept { return total_ ? max_ : 0; }
    std::uint64_t min() const noexcept { return total_ ? min_ : 0; }

    // The value below which a fraction q (0..1) of the samples lie, to the
    // bucket's precision and never above the maximum seen.
    std::uint64_t percentile(double q) const noexcept {
        if (total_ == 0) return 0;
        auto rank = static_cast<std::uint64_t>(q * static_cast<double>(total_) + 0.5);
        rank = std::clamp<std::uint64_t>(rank, 1, total_);
        std::uint64_t seen = 0;
        for (std::size_t i = 0; i < counts_.size(); ++i) {
            seen += counts_[i];
            if (seen >= rank) return std::clamp(upper(i), min(), max());
        }
        return max_;
    }

    static constexpr int kSubBits = 7;  // values below 2^7 are exact
    static constexpr std::size_t kBuckets = (1u << kSubBits) + (64 - kSubBits) * (1u << (kSubBits - 1));

    static std::size_t index(std::uint64_t v) noexcept {
        if (v < (1u << kSubBits)) return static_cast<std::size_t>(v);
        int top = 63 - std::countl_zero(v);  // >= kSubBits
        int shift = top - (kSubBits - 1);
        std::uint64_t mantissa = (v >> shift) - (1u << (kSubBits - 1));  // 0..63
        return (1u << kSubBits) + static_cast<std::size_t>(top - kSubBits) * (1u << (kSubBits - 1)) + mantissa;
    }
    // Largest value that maps to bucket i.
    static std::uint64_t upper(std::size_t i) noexcept {
        if (i < (1u << kSubBits)) return i;
        std::size_t k = i - (1u << kSubBits);
        int top = static_cast<int>(k / (1u << (kSubBits - 1))) + kSubBits;
        std::uint64_t mantissa = k % (1u << (kSubBits - 1)) + (1u << (kSubBits - 1));
        int shift = top - (kSubBits - 1);
        return ((mantissa + 1) << shift) - 1;
    }

private:
    std::array<std::uint64_t, kBuckets> counts_{};
    std::uint64_t total_ = 0;
    std::uint64_t max_ = 0;
    std::uint64_t min_ = UINT64_MAX;
};

}  // namespace greenbench
