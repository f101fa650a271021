// Channel<T>: a closable FIFO between fibers (on any hubs) and plain threads.
//
// Bounded channels block senders while full; unbounded ones never block a
// sender. close() wakes everyone: senders then throw ChannelClosed, receivers
// drain what is buffered and then get std::nullopt. Built on green::Mutex and
// green::CondVar, so it inherits their cross-hub wake protocol.
#pragma once

#include <green/sync.hpp>

#include <cstddef>
#include <deque>
#include <limits>
#include <mutex>
#include <optional>
#include <stdexcept>

namespace green {

class ChannelClosed : public std::runtime_error {
public:
    ChannelClosed() : std::runtime_error("green: send on a closed channel") {}
};

template <class T>
class Channel {
public:
    static constexpr std::size_t kUnbounded = std::numeric_limits<std::size_t>::max();

    // capacity >= 1, or kUnbounded.
    explicit Channel(std::size_t capacity = kUnbounded) : capacity_(capacity == 0 ? 1 : capacity) {}
    Channel(const Channel&) = delete;
    Channel& operator=(const Channel&) = delete;

    void send(T value) {
        std::unique_lock lock(mutex_);
        not_full_.wait(mutex_, [&] { return closed_ || buffer_.size() < capacity_; });
        if (closed_) throw ChannelClosed();
        buffer_.push_back(std::move(value));
        not_empty_.notify_one();
    }

    // false if full or closed
    bool try_send(T value) {
        std::unique_lock lock(mutex_);
        if (closed_ || buffer_.size() >= capacity_) return false;
        buffer_.push_back(std::move(value));
        not_empty_.notify_one();
        return true;
    }

    // std::nullopt once the channel is closed and drained.
    std::optional<T> recv() {
        std::unique_lock lock(mutex_);
        not_empty_.wait(mutex_, [&] { return closed_ || !buffer_.empty(); });
        return take_locked();
    }

    // std::nullopt also when the deadline passes first.
    std::optional<T> recv_until(Clock::time_point deadline) {
        std::unique_lock lock(mutex_);
        if (!not_empty_.wait_until(mutex_, deadline, [&] { return closed_ || !buffer_.empty(); }))
            return std::nullopt;
        return take_locked();
    }
    template <class Rep, class Period>
    std::optional<T> recv_for(std::chrono::duration<Rep, Period> d) {
        return recv_until(Clock::now() + std::chrono::ceil<Clock::duration>(d));
    }

    std::optional<T> try_recv() {
        std::unique_lock lock(mutex_);
        return take_locked();
    }

    void close() {
        std::unique_lock lock(mutex_);
        closed_ = true;
        not_empty_.notify_all();
        not_full_.notify_all();
    }

    bool closed() const {
        std::unique_lock lock(mutex_);
        return closed_;
    }
    std::size_t size() const {
        std::unique_lock lock(mutex_);
        return buffer_.size();
    }

private:
    std::optional<T> take_locked() {
        if (buffer_.empty()) return std::nullopt;
        std::optional<T> value(std::move(buffer_.front()));
        buffer_.pop_front();
        not_full_.notify_one();
        return value;
    }

    const std::size_t capacity_;
    mutable Mutex mutex_;
    CondVar not_empty_;
    CondVar not_full_;
    std::deque<T> buffer_;
    bool closed_ = false;
};

}  // namespace green
