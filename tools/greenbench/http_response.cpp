// See http_response.hpp.
#include "http_response.hpp"

#include <algorithm>
#include <cctype>

namespace greenbench {

namespace {

bool iequals_prefix(std::string_view line, std::string_view name) {
    if (line.size() < name.size()) return false;
    for (std::size_t i = 0; i < name.size(); ++i)
        if (std::tolower(static_cast<unsigned char>(line[i])) != name[i]) return false;
    return true;
}

bool parse_size(std::string_view s, int base, std::uint64_t& out) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    std::size_t semi = s.find(';');  // chunk extensions
    if (semi != std::string_view::npos) s = s.substr(0, semi);
    if (s.empty() || s.size() > 15) return false;
    out = 0;
    for (char c : s) {
        int d = c >= '0' && c <= '9' ? c - '0' : base == 16 && c >= 'a' && c <= 'f' ? c - 'a' + 10
                : base == 16 && c >= 'A' && c <= 'F'                            ? c - 'A' + 10
                                                                                : -1;
        if (d < 0) return false;
        out = out * static_cast<unsigned>(base) + static_cast<unsigned>(d);
    }
    return true;
}

}  // namespace

Outcome read_http_response(Conn& c, Clock::time_point deadline, std::uint64_t& bytes_in, bool& keep) {
    int err = 0;
    keep = false;
    std::size_t head_end;
    bool got_any = c.end > c.begin;
    while ((head_end = c.unread().find("\r\n\r\n")) == std::string_view::npos) {
        if (c.full()) return bad_payload("response header larger than 16 KiB");
        Io io = c.fill(deadline, err, bytes_in);
        if (io != Io::Ok) {
            if (io == Io::Eof && got_any) return io_error(io, kRead, err, "reading the response header");
            return io_error(io, kRead, err, "reading the response");
        }
        got_any = true;
    }
    std::string_view head = c.unread().substr(0, head_end + 2);
    c.begin += head_end + 4;

    // Status line: HTTP/1.x NNN reason
    std::size_t eol = head.find("\r\n");
    std::string_view status_line = head.substr(0, eol);
    if (status_line.size() < 12 || status_line.substr(0, 7) != "HTTP/1." || status_line[8] != ' ')
        return bad_payload("malformed status line '" + std::string(status_line.substr(0, 40)) + "'");
    std::uint64_t status = 0;
    if (!parse_size(status_line.substr(9, 3), 10, status) || status < 100)
        return bad_payload("malformed status code in '" + std::string(status_line.substr(0, 40)) + "'");
    bool http10 = status_line[7] == '0';
    keep = !http10;

    bool chunked = false, has_length = false;
    std::uint64_t length = 0;
    head.remove_prefix(eol + 2);
    while (!head.empty()) {
        eol = head.find("\r\n");
        std::string_view line = head.substr(0, eol);
        head.remove_prefix(eol + 2);
        std::size_t colon = line.find(':');
        if (colon == std::string_view::npos) return bad_payload("malformed header line");
        std::string_view value = line.substr(colon + 1);
        if (iequals_prefix(line, "content-length:")) {
            if (!parse_size(value, 10, length)) return bad_payload("malformed Content-Length");
            has_length = true;
        } else if (iequals_prefix(line, "transfer-encoding:")) {
            chunked = value.find("chunked") != std::string_view::npos;
        } else if (iequals_prefix(line, "connection:")) {
            if (value.find("close") != std::string_view::npos) keep = false;
            if (value.find("keep-alive") != std::string_view::npos) keep = true;
        }
    }

    auto skip_body = [&](std::uint64_t n) -> Outcome {
        for (;;) {
            std::uint64_t take = std::min<std::uint64_t>(n, c.end - c.begin);
            c.begin += take;
            n -= take;
            if (n == 0) return {};
            Io io = c.fill(deadline, err, bytes_in);
            if (io == Io::Eof) return bad_payload("short body: the server closed before the announced length");
            if (io != Io::Ok) return io_error(io, kRead, err, "reading the body");
        }
    };
    auto read_line = [&](std::string_view& line) -> Outcome {
        std::size_t e;
        while ((e = c.unread().find("\r\n")) == std::string_view::npos) {
            if (c.full()) return bad_payload("chunk header too long");
            Io io = c.fill(deadline, err, bytes_in);
            if (io == Io::Eof) return bad_payload("short body: the server closed inside a chunked body");
            if (io != Io::Ok) return io_error(io, kRead, err, "reading the body");
        }
        line = c.unread().substr(0, e);
        c.begin += e + 2;
        return {};
    };

    Outcome body;
    if (status < 200 || status == 204 || status == 304) {
        // no body
    } else if (chunked) {
        for (;;) {
            std::string_view line;
            if (body = read_line(line); body.failed()) return body;
            std::uint64_t size = 0;
            if (!parse_size(line, 16, size)) return bad_payload("malformed chunk size");
            if (size == 0) {
                do {  // trailers, up to the empty line
                    if (body = read_line(line); body.failed()) return body;
                } while (!line.empty());
                break;
            }
            if (body = skip_body(size + 2); body.failed()) return body;
        }
    } else if (has_length) {
        if (body = skip_body(length); body.failed()) return body;
    } else {
        keep = false;  // the body runs to EOF
        for (;;) {
            c.begin = c.end;
            Io io = c.fill(deadline, err, bytes_in);
            if (io == Io::Eof) break;
            if (io != Io::Ok) return io_error(io, kRead, err, "reading the body");
        }
    }
    if (status < 200 || status > 299) {
        Outcome o;
        o.error = kStatus;
        o.message = "status " + std::to_string(status);
        return o;
    }
    return {};
}

}  // namespace greenbench
