#include "coordinator/client.h"

#include <fmt/format.h>

#include <cmath>

#include "protocol/transport.h"

namespace ttc::coordinator {

namespace {

std::string Duration(double s) {
  if (!std::isfinite(s) || s < 0) return "-";
  if (s < 60) return fmt::format("{:.0f}s", s);
  if (s < 3600) return fmt::format("{:.0f}m{:02.0f}s", std::floor(s / 60), std::fmod(s, 60));
  return fmt::format("{:.0f}h{:02.0f}m", std::floor(s / 3600), std::floor(std::fmod(s, 3600) / 60));
}

int64_t I(const nlohmann::json& j, const char* k) {
  auto it = j.find(k);
  return it != j.end() && it->is_number() ? it->get<int64_t>() : 0;
}
double D(const nlohmann::json& j, const char* k) {
  auto it = j.find(k);
  return it != j.end() && it->is_number() ? it->get<double>() : 0.0;
}
std::string S(const nlohmann::json& j, const char* k) {
  auto it = j.find(k);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

}  // namespace

Result<nlohmann::json> Call(const ClientOptions& options, const protocol::ClientRequest& request) {
  TTC_ASSIGN_OR_RETURN(protocol::ClientSecurity sec,
                       protocol::ResolveClientSecurity(options.curve_keys, options.server_key));
  std::string endpoint =
      options.endpoint.empty() ? protocol::DefaultCoordinatorEndpoint() : options.endpoint;
  TTC_ASSIGN_OR_RETURN(
      protocol::ClientReply reply,
      protocol::CallCoordinator(endpoint, request, sec, options.timeout_ms, options.retries));
  return reply.data;
}

std::string FormatProgressLine(const nlohmann::json& e) {
  const nlohmann::json& u = e.contains("units") ? e["units"] : nlohmann::json::object();
  int64_t samples = I(e, "samples");
  int64_t expected = I(e, "samples_expected");
  int64_t graded = I(e, "samples_graded");
  double pct = expected > 0 ? 100.0 * samples / expected : 0;
  std::string acc =
      graded > 0 ? fmt::format("{:.1f}%", 100.0 * I(e, "samples_correct") / graded) : "-";
  const std::string head = fmt::format(
      "experiment {} '{}' {}: units {}/{} done, {} running, {} failed | samples {}/{} ({:.1f}%) | "
      "correct {}",
      I(e, "id"), S(e, "name"), S(e, "state"), I(u, "done"), I(u, "total"), I(u, "leased"),
      I(u, "failed"), samples, expected, pct, acc);
  // With no unit pending or running (done, failed or cancelled) there is no rate to speak of (the
  // last minute's would read 0.0) and nothing to wait for.
  if (I(u, "total") > 0 && I(u, "pending") + I(u, "leased") == 0) return head;
  // Read from a store file (`ttc status --db`): nobody measured a rate.
  if (e.contains("samples_per_s") && e["samples_per_s"].is_null()) return head;
  // Once every sample is in, what is left is scoring: its unit rate says more than a sample rate.
  const bool scoring = expected > 0 && samples >= expected && I(u, "done") < I(u, "total");
  const std::string rate = scoring ? fmt::format("{:.1f} units/s", D(e, "units_per_s"))
                                   : fmt::format("{:.1f} samples/s", D(e, "samples_per_s"));
  const std::string eta =
      e.contains("eta_s") && e["eta_s"].is_number() ? Duration(e["eta_s"].get<double>()) : "-";
  return fmt::format("{} | {} | ETA {}", head, rate, eta);
}

std::string FormatStatus(const nlohmann::json& st) {
  std::string out;
  const nlohmann::json& workers = st.contains("workers") ? st["workers"] : nlohmann::json::array();
  out += fmt::format("{:<28} {:<14} {:<22} {:<9} {:<16} {:>6} {:>9} {:>10}\n", "WORKER", "HOST",
                     "DEVICE", "STATE", "MODEL", "UNIT", "TOK/S", "HEARTBEAT");
  for (const auto& w : workers) {
    out += fmt::format("{:<28} {:<14} {:<22} {:<9} {:<16} {:>6} {:>9.1f} {:>10}\n",
                       S(w, "id").substr(0, 28), S(w, "host").substr(0, 14),
                       S(w, "device").substr(0, 22), S(w, "state"), S(w, "model").substr(0, 16),
                       I(w, "unit") ? std::to_string(I(w, "unit")) : "-", D(w, "tokens_per_s"),
                       Duration(D(w, "last_heartbeat_s")) + " ago");
  }
  if (workers.empty()) out += "(no workers)\n";
  out += "\n";
  const nlohmann::json& exps =
      st.contains("experiments") ? st["experiments"] : nlohmann::json::array();
  for (const auto& e : exps) {
    out += FormatProgressLine(e) + "\n";
    if (e.contains("failed_units")) {
      for (const auto& f : e["failed_units"]) {
        out += fmt::format("  failed unit {} ({}, {} attempts): {}\n", I(f, "unit"), S(f, "model"),
                           I(f, "attempts"), S(f, "error"));
      }
    }
  }
  if (exps.empty()) out += "(no experiments)\n";
  if (st.contains("coordinator") && st["coordinator"].contains("counters")) {
    const auto& c = st["coordinator"]["counters"];
    int64_t dropped =
        I(c, "malformed") + I(c, "unknown_type") + I(c, "invalid") + I(c, "version_mismatch");
    out += fmt::format(
        "\ncoordinator {} up {}: {} messages ({} dropped), {} samples stored, {} stale, {} "
        "duplicate; {} leases "
        "expired, {} workers lost, {} stalled\n",
        S(st["coordinator"], "id"), Duration(D(st["coordinator"], "uptime_s")), I(c, "messages"),
        dropped, I(c, "samples_inserted"), I(c, "samples_stale"), I(c, "samples_duplicate"),
        I(c, "leases_expired"), I(c, "workers_lost"), I(c, "workers_stalled"));
  }
  return out;
}

std::string FormatList(const nlohmann::json& list) {
  std::string out = fmt::format("{:>4}  {:<24} {:<10} {:>12} {:>18}\n", "ID", "NAME", "STATE",
                                "UNITS", "SAMPLES");
  for (const auto& e : list) {
    out +=
        fmt::format("{:>4}  {:<24} {:<10} {:>12} {:>18}\n", I(e, "id"), S(e, "name").substr(0, 24),
                    S(e, "state"), fmt::format("{}/{}", I(e, "units_done"), I(e, "units_total")),
                    fmt::format("{}/{}", I(e, "samples"), I(e, "samples_expected")));
  }
  if (list.empty()) out += "(no experiments)\n";
  return out;
}

}  // namespace ttc::coordinator
