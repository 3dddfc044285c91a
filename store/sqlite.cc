#include "store/sqlite.h"

#include <utility>

namespace ttc::store::internal {

Stmt::~Stmt() {
  if (stmt_ == nullptr) return;
  if (in_use_ == nullptr) {
    sqlite3_finalize(stmt_);
    return;
  }
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
  *in_use_ = false;
}

Stmt& Stmt::Bind(int i, int64_t v) {
  int rc = sqlite3_bind_int64(stmt_, i, v);
  if (rc != SQLITE_OK && !bind_error_) bind_error_ = true, bind_rc_ = rc;
  return *this;
}

Stmt& Stmt::Bind(int i, double v) {
  int rc = sqlite3_bind_double(stmt_, i, v);
  if (rc != SQLITE_OK && !bind_error_) bind_error_ = true, bind_rc_ = rc;
  return *this;
}

Stmt& Stmt::Bind(int i, std::string_view v) {
  // SQLITE_TRANSIENT: SQLite copies, so callers may pass temporaries.
  int rc = sqlite3_bind_text64(stmt_, i, v.data(), v.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
  if (rc != SQLITE_OK && !bind_error_) bind_error_ = true, bind_rc_ = rc;
  return *this;
}

Stmt& Stmt::BindNull(int i) {
  int rc = sqlite3_bind_null(stmt_, i);
  if (rc != SQLITE_OK && !bind_error_) bind_error_ = true, bind_rc_ = rc;
  return *this;
}

Stmt& Stmt::Bind(int i, std::optional<bool> v) {
  if (!v) return BindNull(i);
  return Bind(i, static_cast<int64_t>(*v ? 1 : 0));
}

Result<bool> Stmt::Step() {
  if (bind_error_) return conn_->Error(bind_rc_, "binding a parameter");
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  Status st = conn_->Error(rc, sqlite3_sql(stmt_));
  sqlite3_reset(stmt_);
  return st;
}

Status Stmt::Run() {
  while (true) {
    TTC_ASSIGN_OR_RETURN(bool row, Step());
    if (!row) return Status::Ok();
  }
}

void Stmt::Reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
  bind_error_ = false;
  bind_rc_ = SQLITE_OK;
}

std::string Stmt::Text(int col) const { return std::string(TextView(col)); }

std::string_view Stmt::TextView(int col) const {
  const unsigned char* p = sqlite3_column_text(stmt_, col);
  if (p == nullptr) return {};
  return std::string_view(reinterpret_cast<const char*>(p),
                          static_cast<size_t>(sqlite3_column_bytes(stmt_, col)));
}

Connection::~Connection() {
  for (auto& [sql, entry] : cache_) sqlite3_finalize(entry.stmt);
  sqlite3_close_v2(db_);
}

Result<std::unique_ptr<Connection>> Connection::Open(const std::string& path, int flags) {
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &db, flags | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close_v2(db);
    return Status(rc == SQLITE_CANTOPEN ? StatusCode::kIo : StatusCode::kInternal,
                  fmt::format("{}: cannot open database: {}", path, msg));
  }
  sqlite3_extended_result_codes(db, 1);
  return std::unique_ptr<Connection>(new Connection(db, path));
}

Result<Stmt> Connection::Prepare(const char* sql) {
  auto it = cache_.find(sql);
  if (it != cache_.end() && !it->second.in_use) {
    it->second.in_use = true;
    return Stmt(this, it->second.stmt, &it->second.in_use);
  }
  const bool cache = it == cache_.end();
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v3(db_, sql, -1, cache ? SQLITE_PREPARE_PERSISTENT : 0, &stmt, nullptr);
  if (rc != SQLITE_OK) {
    sqlite3_finalize(stmt);
    return Error(rc, fmt::format("preparing \"{}\"", sql));
  }
  if (!cache) return Stmt(this, stmt, nullptr);
  Cached& entry = cache_[sql];
  entry.stmt = stmt;
  entry.in_use = true;
  return Stmt(this, stmt, &entry.in_use);
}

Status Connection::Exec(const char* sql) {
  char* err = nullptr;
  int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &err);
  if (rc == SQLITE_OK) return Status::Ok();
  std::string msg = err != nullptr ? err : sqlite3_errstr(rc);
  sqlite3_free(err);
  std::string_view sv(sql);
  if (sv.size() > 60) sv = sv.substr(0, 60);
  Status st = Error(rc, fmt::format("running \"{}\"", sv));
  return Status(st.code(), st.message() + " [" + msg + "]");
}

Status Connection::Error(int rc, std::string_view what) const {
  int primary = rc & 0xff;
  StatusCode code;
  std::string hint;
  switch (primary) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      code = StatusCode::kUnavailable;
      hint = " (the database stayed locked by another connection past the busy timeout)";
      break;
    case SQLITE_CORRUPT:
      code = StatusCode::kCorrupt;
      hint = " (the database file is damaged)";
      break;
    case SQLITE_NOTADB:
      code = StatusCode::kCorrupt;
      hint = " (the file is not an SQLite database)";
      break;
    case SQLITE_CONSTRAINT:
    case SQLITE_MISMATCH:
    case SQLITE_TOOBIG:
    case SQLITE_RANGE:
      code = StatusCode::kInvalidArgument;
      break;
    case SQLITE_IOERR:
    case SQLITE_FULL:
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
    case SQLITE_PERM:
      code = StatusCode::kIo;
      break;
    default:
      code = StatusCode::kInternal;
  }
  const char* msg = db_ != nullptr && sqlite3_extended_errcode(db_) == rc ? sqlite3_errmsg(db_)
                                                                          : sqlite3_errstr(rc);
  return Status(code, fmt::format("{}: {}: {}{}", path_, what, msg, hint));
}

Result<std::unique_ptr<WriteTxn>> WriteTxn::Begin(Connection* conn) {
  std::unique_ptr<WriteTxn> txn(new WriteTxn(conn));
  txn->nested_ = conn->txn_depth_ > 0;
  TTC_ASSIGN_OR_RETURN(Stmt s,
                       conn->Prepare(txn->nested_ ? "SAVEPOINT ttc_sp" : "BEGIN IMMEDIATE"));
  TTC_RETURN_IF_ERROR(s.Run());
  ++conn->txn_depth_;
  return txn;
}

Status WriteTxn::Commit() {
  auto s = conn_->Prepare(nested_ ? "RELEASE ttc_sp" : "COMMIT");
  if (!s.ok()) return s.status();
  Status st = s->Run();
  if (!st.ok()) return st;  // the destructor rolls back
  done_ = true;
  --conn_->txn_depth_;
  return Status::Ok();
}

WriteTxn::~WriteTxn() {
  if (done_) return;
  if (nested_) {
    // ROLLBACK TO keeps the savepoint open; RELEASE closes it.
    if (auto s = conn_->Prepare("ROLLBACK TO ttc_sp"); s.ok()) (void)s->Run();
    if (auto s = conn_->Prepare("RELEASE ttc_sp"); s.ok()) (void)s->Run();
  } else if (!sqlite3_get_autocommit(conn_->db())) {
    if (auto s = conn_->Prepare("ROLLBACK"); s.ok()) (void)s->Run();
  }
  --conn_->txn_depth_;
}

}  // namespace ttc::store::internal
