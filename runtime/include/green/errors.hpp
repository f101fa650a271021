// Exceptions the runtime throws out of blocking operations.
//
// Why a small closed set: every blocking call in green can end for exactly one
// of four reasons besides success (cancelled, a scoped deadline passed, the
// channel/fd it waited on was closed, or the whole process is deadlocked), and
// callers need to tell them apart without parsing strings.
#pragma once

#include <stdexcept>
#include <string>

namespace green {

// Delivered at a fiber's next suspension point after Task::cancel(). Letting it
// escape the fiber function is the normal way for a cancelled fiber to end;
// join() on such a fiber rethrows it.
class Cancelled : public std::exception {
public:
    const char* what() const noexcept override { return "green: fiber cancelled"; }
};

// Thrown by a blocking operation that would outlive the innermost
// green::Deadline scope of the calling fiber.
class DeadlineExceeded : public std::exception {
public:
    const char* what() const noexcept override { return "green: deadline exceeded"; }
};

// Thrown by green::run() when no fiber in the process can ever run again.
// what() carries the same report that is printed to stderr.
class Deadlock : public std::runtime_error {
public:
    explicit Deadlock(const std::string& report) : std::runtime_error(report) {}
};

}  // namespace green
