// Internal to store/: the forward-only schema migrations. Migration N turns a version N-1 file into
// a version N file; a file's version is the highest row of its schema_version table. Never edit a
// shipped migration: add a new one. Thread-safety: immutable data.
#pragma once

#include <vector>

namespace ttc::store::internal {

// Marks our files (PRAGMA application_id), so another application's SQLite file is recognised as
// foreign.
inline constexpr int kApplicationId = 0x54544331;  // "TTC1"

struct Migration {
  int version;
  const char* description;
  const char* sql;  // one or more statements, run inside the migration's transaction
};

// In version order, starting at 1.
const std::vector<Migration>& Migrations();

}  // namespace ttc::store::internal
