// A keep-alive HTTP/1.1 test client for the example servers: one blocking
// connection (with connect_to's timeouts, so a broken server fails a test
// instead of hanging it) that sends raw requests and reads Content-Length
// framed responses; bytes after a response stay for the next read.
#pragma once

#include <cerrno>
#include <cstdlib>
#include <string>

#include "net.hpp"

namespace green::test {

struct Response {
    int status = 0;
    std::string body;
    bool close = false;  // the server announced Connection: close
};

class Client {
public:
    explicit Client(int port) : fd_(connect_to(port)) {}
    ~Client() {
        if (fd_ >= 0) close(fd_);
    }
    Client(const Client&) = delete;
    Client& operator=(const Client&) = delete;

    bool ok() const { return fd_ >= 0; }
    int fd() const { return fd_; }
    bool send(const std::string& raw) { return fd_ >= 0 && send_all(fd_, raw); }
    bool get(const std::string& path, Response& r, const std::string& headers = "") {
        return send("GET " + path + " HTTP/1.1\r\nHost: t\r\n" + headers + "\r\n") && read(r);
    }
    // One whole response; false on anything else (EOF, error, timeout, not HTTP/1.1).
    bool read(Response& r) {
        size_t end;
        while ((end = buf_.find("\r\n\r\n")) == std::string::npos)
            if (!more()) return false;
        std::string head = buf_.substr(0, end);
        if (head.rfind("HTTP/1.1 ", 0) != 0) return false;
        r.status = std::atoi(head.c_str() + 9);
        size_t cl = head.find("Content-Length: ");
        size_t length = cl == std::string::npos ? 0 : std::strtoul(head.c_str() + cl + 16, nullptr, 10);
        r.close = head.find("Connection: close") != std::string::npos;
        while (buf_.size() < end + 4 + length)
            if (!more()) return false;
        r.body = buf_.substr(end + 4, length);
        buf_.erase(0, end + 4 + length);
        return true;
    }
    // True when the server closed the connection (EOF), within the timeout.
    bool at_eof() {
        char c;
        return buf_.empty() && recv(fd_, &c, 1, 0) == 0;
    }

private:
    bool more() {
        char chunk[8192];
        for (;;) {
            ssize_t n = recv(fd_, chunk, sizeof chunk, 0);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) return false;
            buf_.append(chunk, static_cast<size_t>(n));
            return true;
        }
    }
    int fd_;
    std::string buf_;
};

}  // namespace green::test
