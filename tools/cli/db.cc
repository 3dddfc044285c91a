// `ttc db check|migrate --db FILE`: inspect a store file (schema version, journal mode, integrity,
// row counts) or upgrade it to the schema version this ttc writes. Check never modifies the file.
#include <spdlog/spdlog.h>

#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "store/store.h"
#include "tools/cli/command.h"

namespace ttc::cli {

namespace {

struct DbFlags {
  std::string db;
  bool json = false;
};

int Fail(const Status& st) {
  spdlog::error("{}", st.ToString());
  return kExitFailure;
}

int RunCheck(const DbFlags& f) {
  store::OpenOptions opt;
  opt.read_only = true;
  opt.allow_old_schema = true;
  auto s = store::Store::Open(f.db, opt);
  if (!s.ok()) return Fail(s.status());
  auto r = (*s)->Check();
  if (!r.ok()) return Fail(r.status());
  const store::CheckReport& c = *r;
  bool old = c.schema_version < c.latest_schema_version;
  if (f.json) {
    nlohmann::json j = {{"path", f.db},
                        {"schema_version", c.schema_version},
                        {"latest_schema_version", c.latest_schema_version},
                        {"needs_migration", old},
                        {"journal_mode", c.journal_mode},
                        {"integrity", c.integrity},
                        {"ok", c.ok()},
                        {"experiments", c.experiments},
                        {"units", c.units},
                        {"samples", c.samples},
                        {"workers", c.workers}};
    std::cout << j.dump() << "\n";
  } else {
    std::cout << f.db << ": schema version " << c.schema_version << " (latest "
              << c.latest_schema_version
              << (old ? "; run `ttc db migrate` or any writing command to upgrade" : "")
              << "), journal " << c.journal_mode << ", integrity " << (c.ok() ? "ok" : "FAILED")
              << "\n"
              << "  " << c.experiments << " experiments, " << c.units << " units, " << c.samples
              << " samples, " << c.workers << " workers\n";
    if (!c.ok()) std::cout << c.integrity << "\n";
  }
  return c.ok() ? kExitOk : kExitFailure;
}

int RunMigrate(const DbFlags& f) {
  int before = 0;
  {
    store::OpenOptions opt;
    opt.read_only = true;
    opt.allow_old_schema = true;
    auto s = store::Store::Open(f.db, opt);
    if (!s.ok()) return Fail(s.status());
    auto v = (*s)->SchemaVersion();
    if (!v.ok()) return Fail(v.status());
    before = *v;
  }
  store::OpenOptions opt;
  opt.create_if_missing = false;
  auto s = store::Store::Open(f.db, opt);
  if (!s.ok()) return Fail(s.status());
  auto v = (*s)->SchemaVersion();
  if (!v.ok()) return Fail(v.status());
  if (f.json) {
    nlohmann::json j = {{"path", f.db}, {"from", before}, {"to", *v}};
    std::cout << j.dump() << "\n";
  } else if (before == *v) {
    std::cout << f.db << ": already at schema version " << *v << "\n";
  } else {
    std::cout << f.db << ": migrated schema version " << before << " -> " << *v << "\n";
  }
  return kExitOk;
}

void RegisterDb(CLI::App& app, CommandTable& table) {
  auto flags = std::make_shared<DbFlags>();
  CLI::App* db = AddCommand(app, table, "db", "Check or migrate a store (SQLite) file", nullptr);
  db->require_subcommand(1);
  CLI::App* check =
      db->add_subcommand("check", "Schema version, integrity check and row counts (read-only)");
  CLI::App* migrate =
      db->add_subcommand("migrate", "Upgrade the file to this ttc's schema version");
  for (CLI::App* sub : {check, migrate}) {
    sub->add_option("--db", flags->db, "The store file")->required();
    sub->add_flag("--json", flags->json, "Print JSON");
  }
  table["db"] = [flags, check, migrate] {
    if (check->parsed()) return RunCheck(*flags);
    if (migrate->parsed()) return RunMigrate(*flags);
    return UsageError("ttc db: give a subcommand: check or migrate");
  };
}

}  // namespace

TTC_REGISTER_COMMAND(kOrderVersion - 5, RegisterDb);

}  // namespace ttc::cli
