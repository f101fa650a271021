// Thread-per-connection HTTP/1.1 server on PostgreSQL: the database-bound
// server a user would write with libpq, plain sockets and std::thread (no
// green headers), to be run as it is and under greenrun.
//
//   pg_threads PORT [--pool N] [--db CONNINFO]
//
// The database comes from CONNINFO or libpq's PG* environment variables and
// must hold the tables scripts/pg_scratch.sh loads:
//   items(id int primary key, name text, value bigint)   rows 1..N
//   counters(id int primary key, value bigint)           rows 1..M
//
// Routes (GET):
//   /static          a fixed body, no database
//   /read?id=K       a prepared primary-key SELECT on items: "id=K name=... value=...\n"
//   /write?id=K      one transaction: SELECT value FROM counters WHERE id=K FOR UPDATE,
//                    UPDATE to value+1, COMMIT; answers the new value (default K=1,
//                    so concurrent writers contend on one row)
// A missing row answers 404, a database error 500 with libpq's message.
//
// With --pool N the handling threads share N connections, taken from a free
// list behind std::mutex + std::condition_variable; without it each handling
// thread opens its own connection on its first database request and closes it
// with the client's connection.
#include <libpq-fe.h>

#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "http_common.hpp"

namespace {

const char* const kStatements[][2] = {
    {"read", "SELECT name, value FROM items WHERE id = $1"},
    {"lock", "SELECT value FROM counters WHERE id = $1 FOR UPDATE"},
    {"update", "UPDATE counters SET value = $2 WHERE id = $1"},
};

struct PgDeleter {
    void operator()(PGconn* c) const { PQfinish(c); }
};
using Conn = std::unique_ptr<PGconn, PgDeleter>;

struct PgResult {
    PGresult* r;
    explicit PgResult(PGresult* res) : r(res) {}
    ~PgResult() { PQclear(r); }
    PgResult(const PgResult&) = delete;
    PgResult& operator=(const PgResult&) = delete;
    bool ok(ExecStatusType want) const { return r && PQresultStatus(r) == want; }
};

std::string conninfo;

// A connection with the statements prepared, or null with `error` set.
Conn open_connection(std::string& error) {
    Conn c(PQconnectdb(conninfo.c_str()));
    if (!c || PQstatus(c.get()) != CONNECTION_OK) {
        error = c ? PQerrorMessage(c.get()) : "out of memory";
        return nullptr;
    }
    for (const auto& [name, sql] : kStatements) {
        PgResult r(PQprepare(c.get(), name, sql, 0, nullptr));
        if (!r.ok(PGRES_COMMAND_OK)) {
            error = std::string("preparing ") + name + ": " + PQerrorMessage(c.get());
            return nullptr;
        }
    }
    return c;
}

example::Response db_error(PGconn* c) { return {500, std::string("database: ") + PQerrorMessage(c)}; }

example::Response do_read(PGconn* c, long id) {
    std::string key = std::to_string(id);
    const char* params[] = {key.c_str()};
    PgResult r(PQexecPrepared(c, "read", 1, params, nullptr, nullptr, 0));
    if (!r.ok(PGRES_TUPLES_OK)) return db_error(c);
    if (PQntuples(r.r) != 1) return {404, "no item " + key + "\n"};
    return {200, "id=" + key + " name=" + PQgetvalue(r.r, 0, 0) + " value=" + PQgetvalue(r.r, 0, 1) + "\n"};
}

example::Response do_write(PGconn* c, long id) {
    std::string key = std::to_string(id);
    {
        PgResult begin(PQexec(c, "BEGIN"));
        if (!begin.ok(PGRES_COMMAND_OK)) return db_error(c);
    }
    auto rollback = [&](example::Response resp) {
        PgResult(PQexec(c, "ROLLBACK"));
        return resp;
    };
    const char* lock_params[] = {key.c_str()};
    std::string next;
    {
        PgResult r(PQexecPrepared(c, "lock", 1, lock_params, nullptr, nullptr, 0));
        if (!r.ok(PGRES_TUPLES_OK)) return rollback(db_error(c));
        if (PQntuples(r.r) != 1) return rollback({404, "no counter " + key + "\n"});
        next = std::to_string(std::strtoll(PQgetvalue(r.r, 0, 0), nullptr, 10) + 1);
    }
    const char* update_params[] = {key.c_str(), next.c_str()};
    {
        PgResult r(PQexecPrepared(c, "update", 2, update_params, nullptr, nullptr, 0));
        if (!r.ok(PGRES_COMMAND_OK)) return rollback(db_error(c));
    }
    PgResult commit(PQexec(c, "COMMIT"));
    if (!commit.ok(PGRES_COMMAND_OK)) return db_error(c);
    return {200, next + "\n"};
}

// The shared connections of --pool N.
class Pool {
public:
    void add(Conn c) { free_.push_back(std::move(c)); }
    Conn take() {
        std::unique_lock<std::mutex> lock(mutex_);
        available_.wait(lock, [&] { return !free_.empty(); });
        Conn c = std::move(free_.back());
        free_.pop_back();
        return c;
    }
    void give_back(Conn c) {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            free_.push_back(std::move(c));
        }
        available_.notify_one();
    }

private:
    std::mutex mutex_;
    std::condition_variable available_;
    std::vector<Conn> free_;
};

std::optional<Pool> pool;

// One handling thread's way to a connection: the pool's, or its own.
class Session {
public:
    ~Session() {
        if (pooled_) pool->give_back(std::move(conn_));
    }
    example::Response handle(const example::Request& req) {
        if (req.method != "GET") return {405, "only GET\n"};
        if (req.path == "/static") return {200, "Hello, World!\n"};
        bool read = req.path == "/read", write = req.path == "/write";
        if (!read && !write) return {404, "not found\n"};
        long id = example::query_long(req.query, "id", 1, 1L << 30);
        PGconn* c = acquire();
        if (!c) return {503, "database: " + error_};
        example::Response resp = read ? do_read(c, id) : do_write(c, id);
        if (PQstatus(c) != CONNECTION_OK) PQreset(c);  // a broken connection is not handed on
        release();
        return resp;
    }

private:
    PGconn* acquire() {
        if (pool) {
            conn_ = pool->take();
            pooled_ = true;
        } else if (!conn_) {
            conn_ = open_connection(error_);
        }
        return conn_.get();
    }
    void release() {
        if (pooled_) pool->give_back(std::move(conn_));
        pooled_ = false;
    }
    Conn conn_;
    bool pooled_ = false;
    std::string error_;
};

[[noreturn]] void usage() {
    std::fprintf(stderr,
                 "usage: pg_threads PORT [--pool N] [--db CONNINFO]\n"
                 "  PORT 0 picks a free port; the server prints 'listening on PORT'.\n"
                 "  --pool N     N shared connections (1-10000); default: one per client connection\n"
                 "  --db CONNINFO  libpq connection string; default: the PG* environment variables\n");
    std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) usage();
    int port = example::parse_port("pg_threads", argv[1]);
    long pool_size = 0;
    for (int i = 2; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--pool" && i + 1 < argc) {
            char* end = nullptr;
            pool_size = std::strtol(argv[++i], &end, 10);
            if (*end || pool_size < 1 || pool_size > 10000) {
                std::fprintf(stderr, "pg_threads: --pool takes 1-10000 connections, not '%s'\n", argv[i]);
                std::exit(2);
            }
        } else if (a == "--db" && i + 1 < argc) {
            conninfo = argv[++i];
        } else {
            usage();
        }
    }

    // Connect before listening, so that a wrong database fails at start.
    std::string error;
    Conn first = open_connection(error);
    if (!first) {
        std::fprintf(stderr, "pg_threads: cannot use the database: %s", error.c_str());
        return 1;
    }
    if (pool_size > 0) {
        pool.emplace();
        pool->add(std::move(first));
        for (long i = 1; i < pool_size; ++i) {
            Conn c = open_connection(error);
            if (!c) {
                std::fprintf(stderr, "pg_threads: pool connection %ld: %s", i + 1, error.c_str());
                return 1;
            }
            pool->add(std::move(c));
        }
    }
    first.reset();

    int listen_fd = example::listen_and_announce("pg_threads", port);
    example::serve_thread_per_connection("pg_threads", listen_fd, [](int fd) {
        Session session;
        example::Connection c{fd, {}, {}};
        while (example::serve_one(session, c)) {
        }
        close(fd);
    });
}
