// See conn.hpp.
#include "conn.hpp"

#include <cstring>

namespace greenbench {

Outcome io_error(Io io, ErrorKind kind, int err, const char* what) {
    Outcome o;
    if (io == Io::Cancelled) {
        o.cancelled = true;
        return o;
    }
    if (io == Io::Timeout) {
        o.error = kTimeout;
        o.message = std::string(what) + ": no answer in time";
        return o;
    }
    o.error = kind;
    o.message = std::string(what) + ": " + (io == Io::Eof ? "connection closed by the server" : std::strerror(err));
    return o;
}

Outcome bad_payload(std::string message) {
    Outcome o;
    o.error = kPayload;
    o.message = std::move(message);
    return o;
}

void Conn::reset() {
    if (fd >= 0) close_fd(fd);
    fd = -1;
    begin = end = 0;
}

Io Conn::fill(Clock::time_point deadline, int& err, std::uint64_t& bytes_in) {
    if (begin > 0) {
        std::memmove(buf.data(), buf.data() + begin, end - begin);
        end -= begin;
        begin = 0;
    }
    std::size_t got = 0;
    Io io = read_some(fd, buf.data() + end, buf.size() - end, got, deadline, err);
    if (io == Io::Ok) {
        end += got;
        bytes_in += got;
    }
    return io;
}

}  // namespace greenbench
