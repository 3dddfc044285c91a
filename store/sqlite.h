// Internal to store/: a thin RAII layer over the SQLite C API (one connection, a cache of prepared
// statements, typed bind/column helpers, nested write transactions, SQLite result codes mapped to
// Status). Other modules use store/store.h instead. Thread-safety: a Connection and its statements
// belong to one thread at a time.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "common/result.h"

namespace ttc::store::internal {

class Connection;

// A cached prepared statement in use: bindings and cursor are reset when the object dies, so the
// cached statement is clean for its next user. Parameter and column indices are SQLite's (bind from
// 1, columns from 0).
class Stmt {
 public:
  // `in_use` is the cache entry's flag (cleared when this object dies), or null for a statement
  // this object owns and finalizes.
  Stmt(Connection* conn, sqlite3_stmt* stmt, bool* in_use)
      : conn_(conn), stmt_(stmt), in_use_(in_use) {}
  ~Stmt();
  Stmt(Stmt&& other) noexcept : conn_(other.conn_), stmt_(other.stmt_), in_use_(other.in_use_) {
    other.stmt_ = nullptr;
  }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  Stmt& operator=(Stmt&&) = delete;

  Stmt& Bind(int i, int64_t v);
  Stmt& Bind(int i, int v) { return Bind(i, static_cast<int64_t>(v)); }
  Stmt& Bind(int i, double v);
  Stmt& Bind(int i, std::string_view v);
  Stmt& Bind(int i, const std::string& v) { return Bind(i, std::string_view(v)); }
  Stmt& Bind(int i, const char* v) { return Bind(i, std::string_view(v)); }
  Stmt& BindNull(int i);
  Stmt& Bind(int i, std::optional<bool> v);

  // Steps once: true when a row is available, false when done; an error Status otherwise.
  Result<bool> Step();
  // Steps to completion, ignoring rows (for INSERT/UPDATE/DELETE).
  Status Run();
  // Re-arms the statement for another execution with new bindings (keeps nothing bound).
  void Reset();

  int64_t Int(int col) const { return sqlite3_column_int64(stmt_, col); }
  double Double(int col) const { return sqlite3_column_double(stmt_, col); }
  bool IsNull(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }
  std::string Text(int col) const;
  std::string_view TextView(int col) const;  // valid until the next Step/Reset
  std::optional<bool> OptionalBool(int col) const {
    if (IsNull(col)) return std::nullopt;
    return Int(col) != 0;
  }

 private:
  Connection* conn_;
  sqlite3_stmt* stmt_;
  bool* in_use_;
  bool bind_error_ = false;
  int bind_rc_ = SQLITE_OK;
};

class Connection {
 public:
  ~Connection();
  // Opens the file with the given sqlite3_open_v2 flags. The path is only used in messages besides
  // opening.
  static Result<std::unique_ptr<Connection>> Open(const std::string& path, int flags);

  sqlite3* db() const { return db_; }
  const std::string& path() const { return path_; }

  // A cached prepared statement for `sql` (prepared on first use). If the cached one is still in
  // use (a nested call running the same SQL), a private statement is prepared for this use instead.
  Result<Stmt> Prepare(const char* sql);
  // Runs SQL text that takes no parameters (DDL of migrations, PRAGMAs); not cached.
  Status Exec(const char* sql);

  // Maps an SQLite result code to a Status naming the file and what was being done.
  Status Error(int rc, std::string_view what) const;

  int txn_depth() const { return txn_depth_; }

 private:
  friend class WriteTxn;
  Connection(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}
  sqlite3* db_;
  std::string path_;
  struct Cached {
    sqlite3_stmt* stmt = nullptr;
    bool in_use = false;
  };
  // Keyed by the SQL text; node-based, so the addresses of the in_use flags are stable.
  std::unordered_map<std::string, Cached> cache_;
  int txn_depth_ = 0;
};

// A write transaction: BEGIN IMMEDIATE at the outermost level (takes the write lock up front, so a
// read-then-write never fails with SQLITE_BUSY_SNAPSHOT), a SAVEPOINT when nested. Rolled back
// unless Commit() succeeded.
class WriteTxn {
 public:
  static Result<std::unique_ptr<WriteTxn>> Begin(Connection* conn);
  ~WriteTxn();
  Status Commit();

 private:
  explicit WriteTxn(Connection* conn) : conn_(conn) {}
  Connection* conn_;
  bool nested_ = false;
  bool done_ = false;
};

}  // namespace ttc::store::internal
