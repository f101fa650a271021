// One load connection as the request code sees it: its socket and receive
// buffer, and the outcome of one request on it before load.cpp counts it.
// The buffer is allocated once per connection and reused by every request,
// so reading answers costs no allocation; its size is also the largest
// response header accepted (http_response.cpp).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "load.hpp"
#include "net.hpp"

namespace greenbench {

// What one request came to: ok (error < 0), one error kind with a message,
// or cancelled (the run ended while it waited: not counted at all).
struct Outcome {
    int error = -1;  // ErrorKind, or -1 for ok
    std::string message;
    bool cancelled = false;

    bool failed() const { return error >= 0 || cancelled; }
};

// The outcome of an I/O call that did not return Io::Ok: a timeout, a
// cancellation, or `kind` with errno's text (EOF: "closed by the server").
Outcome io_error(Io io, ErrorKind kind, int err, const char* what);
Outcome bad_payload(std::string message);

struct Conn {
    int fd = -1;
    static constexpr std::size_t kBufferSize = 16 * 1024;
    std::vector<char> buf = std::vector<char>(kBufferSize);
    std::size_t begin = 0, end = 0;  // unread bytes are buf[begin, end)

    // Closes the socket (telling the hub first) and forgets unread bytes.
    void reset();
    std::string_view unread() const { return {buf.data() + begin, end - begin}; }
    bool full() const { return end - begin >= buf.size(); }
    // Reads more into the buffer (compacting it first); counts into bytes_in.
    Io fill(Clock::time_point deadline, int& err, std::uint64_t& bytes_in);
};

}  // namespace greenbench
