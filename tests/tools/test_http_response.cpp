// greenbench's HTTP response reader on its own, over a socketpair: each way a
// body is framed (Content-Length, chunked, the connection's end, none), when
// the connection may carry the next request, what is left for the next
// response, the malformed and short answers, and the same responses
// delivered one byte per read, so that every split point of a partial
// response is crossed. The end-to-end counting is in test_greenbench.cpp.
#include <gtest/gtest.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "../../tools/greenbench/http_response.hpp"

namespace greenbench {
namespace {

struct Read {
    Outcome outcome;
    bool keep = false;
    std::uint64_t bytes_in = 0;
    std::string rest;  // read but not consumed: the start of the next response
};

bool has(const std::string& text, const std::string& what) { return text.find(what) != std::string::npos; }

// The server's end writes blocking; the reader's end is non-blocking, as
// greenbench's sockets are, and is closed by the Conn that reads it.
class Wire {
public:
    Wire() {
        int fds[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) std::abort();
        reader_ = fds[0];
        writer_ = fds[1];
        int one = 1;
        ioctl(reader_, FIONBIO, &one);
    }
    ~Wire() { close(writer_); }
    Wire(const Wire&) = delete;
    Wire& operator=(const Wire&) = delete;

    int reader() const { return reader_; }
    void send(const std::string& s) {
        for (std::size_t at = 0; at < s.size();) {
            ssize_t n = ::send(writer_, s.data() + at, s.size() - at, MSG_NOSIGNAL);
            if (n <= 0) std::abort();
            at += static_cast<std::size_t>(n);
        }
    }
    void end() { shutdown(writer_, SHUT_WR); }
    // Bytes written but not yet read by the reader.
    int queued() const {
        int n = 0;
        ioctl(reader_, FIONREAD, &n);
        return n;
    }

private:
    int reader_ = -1, writer_ = -1;
};

// Reads `count` responses one after the other on one connection, then runs
// `before_close` (still on the reading fiber) and closes the reader's end.
std::vector<Read> read_responses(Wire& w, int count, Clock::time_point deadline = Clock::time_point::max(),
                                 const std::function<void()>& before_close = {}) {
    std::vector<Read> out;
    green::run([&] {
        Conn c;
        c.fd = w.reader();
        for (int i = 0; i < count; ++i) {
            Read r;
            r.outcome = read_http_response(c, deadline, r.bytes_in, r.keep);
            r.rest = std::string(c.unread());
            out.push_back(r);
        }
        if (before_close) before_close();
        c.reset();
    });
    return out;
}

// The whole wire sent first (it fits the socket buffer), then, with `eof`,
// the writing side shut.
Read read_whole(const std::string& wire, bool eof, Clock::time_point deadline = Clock::time_point::max()) {
    Wire w;
    w.send(wire);
    if (eof) w.end();
    return read_responses(w, 1, deadline).front();
}

// The same wire, one byte at a time: the next byte is written only once the
// reader has taken the previous one off the socket, so every read returns
// exactly one byte.
Read read_bytewise(const std::string& wire, bool eof) {
    Wire w;
    std::atomic<bool> done{false};
    std::thread writer([&] {
        for (char ch : wire) {
            w.send(std::string(1, ch));
            while (w.queued() > 0 && !done.load()) std::this_thread::yield();
            if (done.load()) return;  // the reader gave up early
        }
        if (eof) w.end();
    });
    // The writer is finished with the reader's end before it is closed.
    return read_responses(w, 1, Clock::time_point::max(), [&] {
               done.store(true);
               writer.join();
           }).front();
}

void expect_ok(const Read& r, bool keep, const std::string& rest = "") {
    EXPECT_EQ(r.outcome.error, -1) << r.outcome.message;
    EXPECT_FALSE(r.outcome.cancelled);
    EXPECT_EQ(r.keep, keep);
    EXPECT_EQ(r.rest, rest);
}

void expect_error(const Read& r, ErrorKind kind, const std::string& message_part) {
    EXPECT_EQ(r.outcome.error, kind) << r.outcome.message;
    EXPECT_TRUE(has(r.outcome.message, message_part)) << r.outcome.message;
}

const std::string kLength = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
const std::string kChunked =
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nX-Trailer: t\r\n\r\n";
const std::string kToEof = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nbody until close";

TEST(HttpResponse, ContentLengthFramesTheBodyAndTheNextResponseFollows) {
    Wire w;
    const std::string second = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
    w.send(kLength + second);
    auto reads = read_responses(w, 2);
    expect_ok(reads[0], true, second);
    expect_ok(reads[1], true);
    EXPECT_EQ(reads[0].bytes_in + reads[1].bytes_in, kLength.size() + second.size());
}

TEST(HttpResponse, ChunkedBodiesSkipExtensionsAndTrailers) {
    expect_ok(read_whole(kChunked + "NEXT", false), true, "NEXT");
    expect_ok(read_whole("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nA\r\n0123456789\r\n0\r\n\r\n", false),
              true);
}

TEST(HttpResponse, WithoutLengthTheBodyRunsToTheEndAndTheConnectionCannotBeReused) {
    Read r = read_whole(kToEof, true);
    expect_ok(r, false);
    EXPECT_EQ(r.bytes_in, kToEof.size());
}

TEST(HttpResponse, WhetherTheConnectionIsKept) {
    expect_ok(read_whole("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok", false), false);
    expect_ok(read_whole("HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", false), false);
    expect_ok(read_whole("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok", false), true);
}

TEST(HttpResponse, NoBodyFor204And304) {
    expect_ok(read_whole("HTTP/1.1 204 No Content\r\n\r\nNEXT", false), true, "NEXT");
    Read not_modified = read_whole("HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\nNEXT", false);
    expect_error(not_modified, kStatus, "status 304");
    EXPECT_EQ(not_modified.rest, "NEXT") << "a 304's Content-Length announces no body";
}

TEST(HttpResponse, ANon2xxAnswerIsAStatusErrorAndReadWhole) {
    Read r = read_whole("HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\n\r\noopsNEXT", false);
    expect_error(r, kStatus, "status 500");
    EXPECT_TRUE(r.keep);
    EXPECT_EQ(r.rest, "NEXT");
}

TEST(HttpResponse, ShortBodiesAreBadPayloads) {
    expect_error(read_whole("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten..", true), kPayload, "short body");
    expect_error(read_whole("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel", true), kPayload,
                 "short body");
    expect_error(read_whole("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n", true), kPayload,
                 "short body");
}

TEST(HttpResponse, AnEndBeforeTheHeaderIsAReadError) {
    expect_error(read_whole("", true), kRead, "reading the response: connection closed");
    expect_error(read_whole("HTTP/1.1 200 OK\r\nContent-Le", true), kRead, "reading the response header");
}

TEST(HttpResponse, MalformedAnswersAreBadPayloads) {
    expect_error(read_whole("HTTP/1.1 abc nonsense\r\n\r\n", false), kPayload, "malformed status code");
    expect_error(read_whole("SSH-2.0-OpenSSH_9.2\r\n\r\n", false), kPayload, "malformed status line");
    expect_error(read_whole("HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", false), kPayload, "malformed header line");
    expect_error(read_whole("HTTP/1.1 200 OK\r\nContent-Length: many\r\n\r\n", false), kPayload,
                 "malformed Content-Length");
    expect_error(read_whole("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", false), kPayload,
                 "malformed chunk size");
    std::string huge = "HTTP/1.1 200 OK\r\nX-Filler: " + std::string(Conn::kBufferSize, 'x') + "\r\n\r\n";
    expect_error(read_whole(huge, false), kPayload, "larger than 16 KiB");
}

TEST(HttpResponse, AnIncompleteAnswerPastTheDeadlineIsATimeout) {
    // The deadline has passed before the read: the partial header is read,
    // and waiting for the rest ends at once.
    auto past = Clock::now() - std::chrono::seconds(1);
    expect_error(read_whole("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n", false, past), kTimeout, "no answer in time");
    expect_error(read_whole(kLength.substr(0, kLength.size() - 2), false, past), kTimeout, "no answer in time");
}

TEST(HttpResponse, ResponsesDeliveredOneByteAtATimeReadTheSame) {
    Read length = read_bytewise(kLength, false);
    expect_ok(length, true);
    EXPECT_EQ(length.bytes_in, kLength.size());
    expect_ok(read_bytewise(kChunked, false), true);
    expect_ok(read_bytewise(kToEof, true), false);
    expect_ok(read_bytewise("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok", false), true);
    expect_error(read_bytewise("HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n", false), kStatus, "status 503");
    expect_error(read_bytewise("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nshort", true), kPayload, "short body");
}

}  // namespace
}  // namespace greenbench
