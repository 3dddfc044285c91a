#include "store/types.h"

#include <chrono>

namespace ttc::store {

double UnixSeconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

namespace {

template <typename E, size_t N>
std::optional<E> ParseName(std::string_view name, const char* const (&names)[N]) {
  for (size_t i = 0; i < N; ++i) {
    if (name == names[i]) return static_cast<E>(i);
  }
  return std::nullopt;
}

// Index = enum value; these strings are what the database stores (and its CHECK constraints list).
constexpr const char* kExperimentStates[] = {"active", "cancelled", "done"};
constexpr const char* kUnitKinds[] = {"generate", "score"};
constexpr const char* kUnitStates[] = {"pending", "leased", "done", "failed", "cancelled"};
constexpr const char* kWorkerStates[] = {"idle", "loading", "busy", "draining", "offline"};
constexpr const char* kInsertOutcomes[] = {"inserted", "duplicate", "stale"};

}  // namespace

const char* Name(ExperimentState s) { return kExperimentStates[static_cast<int>(s)]; }
const char* Name(UnitKind k) { return kUnitKinds[static_cast<int>(k)]; }
const char* Name(UnitState s) { return kUnitStates[static_cast<int>(s)]; }
const char* Name(WorkerState s) { return kWorkerStates[static_cast<int>(s)]; }
const char* Name(InsertOutcome o) { return kInsertOutcomes[static_cast<int>(o)]; }

std::optional<ExperimentState> ParseExperimentState(std::string_view name) {
  return ParseName<ExperimentState>(name, kExperimentStates);
}
std::optional<UnitKind> ParseUnitKind(std::string_view name) {
  return ParseName<UnitKind>(name, kUnitKinds);
}
std::optional<UnitState> ParseUnitState(std::string_view name) {
  return ParseName<UnitState>(name, kUnitStates);
}
std::optional<WorkerState> ParseWorkerState(std::string_view name) {
  return ParseName<WorkerState>(name, kWorkerStates);
}

}  // namespace ttc::store
