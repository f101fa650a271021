// Reading one HTTP/1.x response off a load connection, to the last byte of
// its body, and judging it the way load.hpp's counting rules say: framed by
// Content-Length, chunked transfer coding (extensions and trailers skipped),
// or the connection's end; no body for 1xx, 204 and 304. The body is skipped,
// not kept. Bytes after the response stay in the buffer for the next one.
#pragma once

#include "conn.hpp"

namespace greenbench {

// Reads one complete response from c, waiting (this fiber only) until
// `deadline`. ok for a 2xx; status for another complete answer; payload for
// a malformed or short one; read/timeout/cancelled as the I/O ended.
// `keep` says whether the connection can carry the next request (HTTP/1.1
// unless "Connection: close", HTTP/1.0 only with "Connection: keep-alive",
// never after a body framed by EOF).
Outcome read_http_response(Conn& c, Clock::time_point deadline, std::uint64_t& bytes_in, bool& keep);

}  // namespace greenbench
