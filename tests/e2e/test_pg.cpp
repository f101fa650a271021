// End to end on a real PostgreSQL: examples/pg_threads (libpq, a thread per
// connection) run unpatched and under greenrun with 1 and 2 hubs, with a pool
// of connections behind std::mutex + std::condition_variable and with one
// connection per thread. Results are checked exactly: every /read returns its
// row, and concurrent /write transactions (SELECT ... FOR UPDATE, UPDATE,
// COMMIT on one row) lose no update: the values answered are 1..N, each once,
// and the row in the database (read with psql, not through the server) says N.
//
// The database is scripts/pg_scratch.sh's throw-away one: main() re-executes
// this program under that script, which removes the database when it ends.
// Without PostgreSQL installed the tests are skipped, visibly, with the reason.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <set>
#include <thread>

#include "../common/child.hpp"
#include "../common/env.hpp"
#include "../common/http_client.hpp"
#include "../common/started_server.hpp"

using namespace green::test;

namespace {

struct Variant {
    const char* name;
    int hubs;    // 0: unpatched
    int pool;    // 0: one connection per thread
    int row;     // the counters row this variant writes, so variants do not share one
};

void PrintTo(const Variant& v, std::ostream* os) { *os << v.name; }

void skip_without_postgres() {
    if (const char* why = std::getenv("GREEN_PG_UNAVAILABLE")) GTEST_SKIP() << why;
}

std::vector<std::string> server_command(const Variant& v, std::vector<std::string> extra = {}) {
    std::vector<std::string> argv;
    if (v.hubs > 0) argv = {env_or_die("GREEN_GREENRUN"), "--hubs", std::to_string(v.hubs), "--"};
    argv.push_back(example_path("pg_threads"));
    argv.push_back("0");
    if (v.pool > 0) {
        argv.push_back("--pool");
        argv.push_back(std::to_string(v.pool));
    }
    argv.insert(argv.end(), extra.begin(), extra.end());
    return argv;
}

// What /read?id=ID answers for a row of the items table.
std::string item_row(int id) {
    return "id=" + std::to_string(id) + " name=item-" + std::to_string(id) + " value=" + std::to_string(id * 10) + "\n";
}

// The row as the database has it, asked with psql.
std::string psql(const std::string& sql) {
    auto c = run_capture({env_or_die("GREEN_PG_BIN") + "/psql", "-Atqc", sql});
    EXPECT_EQ(c.status, 0) << c.err;
    return c.out;
}

class PgThreads : public ::testing::TestWithParam<Variant> {
protected:
    void SetUp() override {
        skip_without_postgres();
        if (IsSkipped()) return;
        server_ = start_server(server_command(GetParam()), {}, GetParam().hubs > 0);
        ASSERT_FALSE(HasFailure());
    }
    std::unique_ptr<ServerChild> server_;
};

TEST_P(PgThreads, ReadsReturnTheirRows) {
    Client c(server_->port());
    ASSERT_TRUE(c.ok());
    Response r;
    ASSERT_TRUE(c.get("/static", r));
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, "Hello, World!\n");
    for (int id : {1, 42, 9999, 10000}) {
        ASSERT_TRUE(c.get("/read?id=" + std::to_string(id), r));
        EXPECT_EQ(r.status, 200) << r.body;
        EXPECT_EQ(r.body, item_row(id));
    }
    ASSERT_TRUE(c.get("/read?id=10001", r));
    EXPECT_EQ(r.status, 404);
    ASSERT_TRUE(c.get("/nothing", r));
    EXPECT_EQ(r.status, 404);
}

// Clients write one row concurrently while others read: each write answers
// the value it committed, so no lost update means the answers are exactly
// start+1 .. start+N and the row ends at start+N.
TEST_P(PgThreads, ConcurrentWritesLoseNoUpdate) {
    constexpr int kWriters = 12, kReaders = 4, kEach = 25;
    const std::string row = std::to_string(GetParam().row);
    const long start = std::atol(psql("SELECT value FROM counters WHERE id = " + row).c_str());
    std::vector<std::vector<long>> seen(kWriters);
    std::atomic<int> failures{0};
    std::vector<std::thread> clients;
    for (int t = 0; t < kWriters; ++t)
        clients.emplace_back([&, t] {
            Client c(server_->port());
            Response r;
            for (int i = 0; i < kEach; ++i) {
                if (!c.get("/write?id=" + row, r) || r.status != 200) {
                    ++failures;
                    return;
                }
                seen[t].push_back(std::atol(r.body.c_str()));
            }
        });
    for (int t = 0; t < kReaders; ++t)
        clients.emplace_back([&, t] {
            Client c(server_->port());
            Response r;
            for (int i = 0; i < kEach; ++i) {
                int id = 1 + (t * 997 + i * 131) % 10000;
                if (!c.get("/read?id=" + std::to_string(id), r) || r.body != item_row(id)) ++failures;
            }
        });
    for (auto& c : clients) c.join();
    EXPECT_EQ(failures.load(), 0);
    std::multiset<long> values;
    for (const auto& v : seen) values.insert(v.begin(), v.end());
    std::multiset<long> expected;
    for (long v = start + 1; v <= start + kWriters * kEach; ++v) expected.insert(v);
    EXPECT_EQ(values, expected);
    EXPECT_EQ(psql("SELECT value FROM counters WHERE id = " + row), std::to_string(start + kWriters * kEach) + "\n");
}

const Variant kVariants[] = {
    {"unpatched_pool", 0, 4, 1},      {"unpatched_per_thread", 0, 0, 2},
    {"hubs1_pool", 1, 4, 3},          {"hubs1_per_thread", 1, 0, 4},
    {"hubs2_pool", 2, 4, 5},          {"hubs2_per_thread", 2, 0, 6},
};
INSTANTIATE_TEST_SUITE_P(Pg, PgThreads, ::testing::ValuesIn(kVariants),
                         [](const ::testing::TestParamInfo<Variant>& i) { return std::string(i.param.name); });

// A database it cannot use stops the server at start with one line, the same
// patched or not.
TEST(PgThreadsStart, UnusableDatabaseFailsAtStartTheSamePatchedOrNot) {
    skip_without_postgres();
    std::vector<std::string> bad_db = {"--db", "host=" + std::string(std::getenv("GREEN_PG_SOCKET_DIR")) +
                                                   " dbname=no_such_database"};
    auto unpatched = run_capture(server_command({"", 0, 0, 0}, bad_db));
    auto patched = run_capture(server_command({"", 1, 0, 0}, bad_db));
    EXPECT_EQ(unpatched.status, 1);
    EXPECT_NE(unpatched.err.find("pg_threads: cannot use the database:"), std::string::npos) << unpatched.err;
    EXPECT_NE(unpatched.err.find("no_such_database"), std::string::npos) << unpatched.err;
    EXPECT_EQ(patched.status, unpatched.status);
    EXPECT_EQ(patched.out, unpatched.out);
    EXPECT_EQ(patched.err, unpatched.err);
}

}  // namespace

// Runs the tests inside scripts/pg_scratch.sh, which provides the database
// (PG* variables) and removes it afterwards.
int main(int argc, char** argv) {
    if (!std::getenv("GREEN_PG_WRAPPED")) {
        char exe[4096];
        ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
        if (n <= 0) {
            std::perror("test_pg: readlink /proc/self/exe");
            return 1;
        }
        exe[n] = 0;
        std::vector<std::string> args = {"bash", env_or_die("GREEN_PG_SCRATCH"), "--", exe};
        args.insert(args.end(), argv + 1, argv + argc);
        Command(args, {"GREEN_PG_WRAPPED=1"}).exec();
        std::perror("test_pg: exec bash");
        return 1;
    }
    ::testing::InitGoogleTest(&argc, argv);
    return RUN_ALL_TESTS();
}
