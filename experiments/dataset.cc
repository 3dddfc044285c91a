// Dataset loaders, gold rules, the fingerprint and SHA-256 (see dataset.h).
#include "experiments/dataset.h"

#include <fmt/format.h>

#include <array>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "experiments/synthetic.h"

#ifndef TTC_CONFIGURED_DATA_DIR
#define TTC_CONFIGURED_DATA_DIR ""
#endif

namespace ttc::experiments {

using nlohmann::json;

std::vector<std::filesystem::path> DataDirCandidates(const std::string& data_dir) {
  if (!data_dir.empty()) return {std::filesystem::path(data_dir)};
  std::vector<std::filesystem::path> dirs;
  if (const char* env = std::getenv("TTC_DATA_DIR"); env != nullptr && *env != '\0')
    dirs.emplace_back(env);
  dirs.emplace_back("data");
  dirs.emplace_back("../shared/data");
  const std::string configured = TTC_CONFIGURED_DATA_DIR;
  if (!configured.empty()) dirs.emplace_back(std::filesystem::path(configured).lexically_normal());
  return dirs;
}

Result<std::filesystem::path> FindDataFile(std::string_view file_name,
                                           const std::string& data_dir) {
  std::vector<std::filesystem::path> dirs = DataDirCandidates(data_dir);
  std::string searched;
  for (const auto& dir : dirs) {
    std::error_code ec;
    const std::filesystem::path candidate = dir / std::string(file_name);
    if (std::filesystem::is_regular_file(candidate, ec)) return candidate;
    if (!searched.empty()) searched += ", ";
    searched += std::filesystem::absolute(dir, ec).lexically_normal().string();
  }
  return NotFound("{} not found in {} (searched: {}). ttc never downloads data: {}", file_name,
                  data_dir.empty() ? "the default data folders" : "data_dir", searched, kDataHelp);
}

std::optional<std::string> LastBoxedContent(std::string_view solution) {
  const size_t idx = solution.rfind("\\boxed");
  if (idx == std::string_view::npos) return std::nullopt;
  size_t i = idx + 6;
  while (i < solution.size() && solution[i] == ' ') ++i;
  if (i >= solution.size() || solution[i] != '{') return std::nullopt;
  int depth = 0;
  for (size_t j = i; j < solution.size(); ++j) {
    if (solution[j] == '{') ++depth;
    if (solution[j] == '}' && --depth == 0) return std::string(solution.substr(i + 1, j - i - 1));
  }
  return std::nullopt;
}

std::string Gsm8kGold(std::string_view answer) {
  const size_t pos = answer.rfind("####");
  std::string_view tail = pos == std::string_view::npos ? answer : answer.substr(pos + 4);
  const size_t b = tail.find_first_not_of(" \t\r\n\v\f");
  const size_t e = tail.find_last_not_of(" \t\r\n\v\f");
  tail = b == std::string_view::npos ? std::string_view() : tail.substr(b, e - b + 1);
  std::string gold;
  for (char c : tail) {
    if (c != ',') gold += c;
  }
  return gold;
}

namespace {

// Each non-blank line of a JSONL file, parsed, with its 1-based line number.
struct JsonLine {
  size_t line = 0;
  json value;
};

Result<std::vector<JsonLine>> ReadJsonl(const std::filesystem::path& file, std::string_view what) {
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    std::error_code ec;
    if (!std::filesystem::exists(file, ec))
      return NotFound("{} file {} does not exist", what, file.string());
    return IoError("cannot read {} file {}", what, file.string());
  }
  std::vector<JsonLine> rows;
  std::string text;
  size_t line_no = 0;
  while (std::getline(in, text)) {
    ++line_no;
    if (!text.empty() && text.back() == '\r') text.pop_back();
    if (text.find_first_not_of(" \t") == std::string::npos) continue;
    JsonLine row;
    row.line = line_no;
    try {
      row.value = json::parse(text);
    } catch (const json::parse_error& e) {
      std::string msg = e.what();
      if (auto pos = msg.find("] "); pos != std::string::npos) msg = msg.substr(pos + 2);
      return Corrupt("{}:{}: invalid JSON: {}", file.string(), line_no, msg);
    }
    if (!row.value.is_object())
      return Corrupt("{}:{}: expected a JSON object per line", file.string(), line_no);
    rows.push_back(std::move(row));
  }
  if (in.bad()) return IoError("reading {} failed", file.string());
  return rows;
}

Result<std::string> StringField(const JsonLine& row, const std::string& field,
                                const std::filesystem::path& file) {
  auto it = row.value.find(field);
  if (it == row.value.end())
    return Corrupt("{}:{}: field '{}' is missing", file.string(), row.line, field);
  if (!it->is_string()) {
    return Corrupt("{}:{}: field '{}' should be a string, got {}", file.string(), row.line, field,
                   it->type_name());
  }
  return it->get<std::string>();
}

// A string as is; a number in its JSON spelling (gold answers and ids in user files are often
// numbers).
Result<std::string> ScalarField(const JsonLine& row, const std::string& field,
                                const std::filesystem::path& file) {
  auto it = row.value.find(field);
  if (it == row.value.end())
    return Corrupt("{}:{}: field '{}' is missing", file.string(), row.line, field);
  if (it->is_string()) return it->get<std::string>();
  if (it->is_number()) return it->dump();
  return Corrupt("{}:{}: field '{}' should be a string or a number, got {}", file.string(),
                 row.line, field, it->type_name());
}

}  // namespace

Result<std::vector<Problem>> LoadMath500(const std::filesystem::path& file) {
  TTC_ASSIGN_OR_RETURN(std::vector<JsonLine> rows, ReadJsonl(file, "MATH-500"));
  std::vector<Problem> problems;
  problems.reserve(rows.size());
  std::set<std::string> ids;
  for (const JsonLine& row : rows) {
    Problem p;
    p.task = Task::kMath;
    TTC_ASSIGN_OR_RETURN(p.question, StringField(row, "problem", file));
    TTC_ASSIGN_OR_RETURN(p.solution, StringField(row, "solution", file));
    TTC_ASSIGN_OR_RETURN(std::string unique_id, StringField(row, "unique_id", file));
    p.id = "math500/" + unique_id;
    if (!ids.insert(p.id).second)
      return Corrupt("{}:{}: duplicate unique_id '{}'", file.string(), row.line, unique_id);
    // Gold rule (§1.1): the last \boxed{} of the solution, which the `answer` field equals in the
    // official file.
    std::optional<std::string> boxed = LastBoxedContent(p.solution);
    if (row.value.contains("answer")) {
      TTC_ASSIGN_OR_RETURN(p.gold_answer, StringField(row, "answer", file));
    } else if (boxed) {
      p.gold_answer = *boxed;
    } else {
      return Corrupt("{}:{}: no 'answer' field and no \\boxed{{}} in the solution", file.string(),
                     row.line);
    }
    p.extra =
        json{{"unique_id", unique_id}, {"answer_is_last_boxed", boxed && *boxed == p.gold_answer}};
    if (auto it = row.value.find("subject"); it != row.value.end() && it->is_string())
      p.subject = *it;
    if (auto it = row.value.find("level"); it != row.value.end() && it->is_number_integer())
      p.level = *it;
    problems.push_back(std::move(p));
  }
  return problems;
}

Result<std::vector<Problem>> LoadGsm8k(const std::filesystem::path& file) {
  TTC_ASSIGN_OR_RETURN(std::vector<JsonLine> rows, ReadJsonl(file, "GSM8K"));
  std::vector<Problem> problems;
  problems.reserve(rows.size());
  for (size_t i = 0; i < rows.size(); ++i) {
    const JsonLine& row = rows[i];
    Problem p;
    p.task = Task::kGsm8k;
    p.id = fmt::format("gsm8k/{}", i);
    TTC_ASSIGN_OR_RETURN(p.question, StringField(row, "question", file));
    TTC_ASSIGN_OR_RETURN(p.solution, StringField(row, "answer", file));
    if (p.solution.find("####") == std::string::npos) {
      return Corrupt("{}:{}: the answer has no '#### <final answer>' line", file.string(),
                     row.line);
    }
    p.gold_answer = Gsm8kGold(p.solution);
    if (p.gold_answer.empty())
      return Corrupt("{}:{}: nothing after '####'", file.string(), row.line);
    problems.push_back(std::move(p));
  }
  return problems;
}

Result<std::vector<Problem>> LoadUserJsonl(const std::filesystem::path& file,
                                           const JsonlFields& fields) {
  TTC_ASSIGN_OR_RETURN(std::vector<JsonLine> rows, ReadJsonl(file, "dataset"));
  std::vector<Problem> problems;
  problems.reserve(rows.size());
  std::map<std::string, size_t> seen;
  const std::string stem = file.stem().string();
  for (size_t i = 0; i < rows.size(); ++i) {
    const JsonLine& row = rows[i];
    Problem p;
    p.task = fields.task;
    TTC_ASSIGN_OR_RETURN(p.question, StringField(row, fields.question, file));
    TTC_ASSIGN_OR_RETURN(p.gold_answer, ScalarField(row, fields.answer, file));
    if (p.question.empty())
      return Corrupt("{}:{}: field '{}' is empty", file.string(), row.line, fields.question);
    if (p.gold_answer.empty())
      return Corrupt("{}:{}: field '{}' is empty", file.string(), row.line, fields.answer);
    if (fields.id.empty()) {
      p.id = fmt::format("{}/{}", stem, i);
    } else {
      TTC_ASSIGN_OR_RETURN(p.id, ScalarField(row, fields.id, file));
      if (p.id.empty())
        return Corrupt("{}:{}: field '{}' is empty", file.string(), row.line, fields.id);
    }
    if (auto [it, inserted] = seen.emplace(p.id, row.line); !inserted) {
      return Corrupt("{}:{}: duplicate id '{}' (first on line {})", file.string(), row.line, p.id,
                     it->second);
    }
    if (auto it = row.value.find("solution"); it != row.value.end() && it->is_string())
      p.solution = *it;
    p.extra = json::object();
    for (auto it = row.value.begin(); it != row.value.end(); ++it) {
      if (it.key() != fields.question && it.key() != fields.answer && it.key() != fields.id &&
          it.key() != "solution") {
        p.extra[it.key()] = it.value();
      }
    }
    problems.push_back(std::move(p));
  }
  return problems;
}

Result<std::vector<Problem>> LoadDataset(const DatasetSpec& spec, const std::string& data_dir) {
  std::vector<Problem> problems;
  switch (spec.kind) {
    case DatasetKind::kMath500: {
      TTC_ASSIGN_OR_RETURN(std::filesystem::path file, FindDataFile(kMath500FileName, data_dir));
      TTC_ASSIGN_OR_RETURN(problems, LoadMath500(file));
      break;
    }
    case DatasetKind::kGsm8k: {
      TTC_ASSIGN_OR_RETURN(std::filesystem::path file, FindDataFile(kGsm8kFileName, data_dir));
      TTC_ASSIGN_OR_RETURN(problems, LoadGsm8k(file));
      break;
    }
    case DatasetKind::kJsonl: {
      JsonlFields fields;
      fields.question = spec.question_field;
      fields.answer = spec.answer_field;
      fields.id = spec.id_field;
      fields.task = spec.task;
      TTC_ASSIGN_OR_RETURN(problems, LoadUserJsonl(spec.path, fields));
      break;
    }
    case DatasetKind::kSynthetic: {
      SyntheticOptions options;
      options.count = spec.count;
      options.seed = spec.seed;
      options.min_level = spec.min_level;
      options.max_level = spec.max_level;
      auto generated = GenerateSynthetic(options);
      if (!generated.ok()) return generated.status().WithContext("dataset synthetic");
      problems = std::move(generated).value();
      break;
    }
  }
  if (!spec.ids.empty()) {
    // An id matches a problem's full id ("math500/test/algebra/1.json") or the part after the
    // dataset prefix.
    std::map<std::string, size_t> index;
    for (size_t i = 0; i < problems.size(); ++i) {
      index.emplace(problems[i].id, i);
      if (auto slash = problems[i].id.find('/'); slash != std::string::npos) {
        index.emplace(problems[i].id.substr(slash + 1), i);
      }
    }
    std::vector<bool> keep(problems.size(), false);
    for (const std::string& id : spec.ids) {
      auto it = index.find(id);
      if (it == index.end()) {
        return NotFound("dataset.ids: no problem '{}' in dataset {} (ids look like '{}')", id,
                        DatasetKindName(spec.kind), problems.empty() ? "" : problems.front().id);
      }
      keep[it->second] = true;
    }
    std::vector<Problem> kept;
    for (size_t i = 0; i < problems.size(); ++i) {
      if (keep[i]) kept.push_back(std::move(problems[i]));
    }
    problems = std::move(kept);
  }
  if (spec.limit > 0 && problems.size() > static_cast<size_t>(spec.limit))
    problems.resize(spec.limit);
  return problems;
}

// ---------------------------------------------------------------------------------------------------------------
// SHA-256 (FIPS 180-4).

namespace {

constexpr std::array<uint32_t, 64> kSha256K = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

inline uint32_t Rotr(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

void Sha256Block(std::array<uint32_t, 8>& h, const unsigned char* block) {
  std::array<uint32_t, 64> w;
  for (int i = 0; i < 16; ++i) {
    w[i] = (uint32_t{block[4 * i]} << 24) | (uint32_t{block[4 * i + 1]} << 16) |
           (uint32_t{block[4 * i + 2]} << 8) | uint32_t{block[4 * i + 3]};
  }
  for (int i = 16; i < 64; ++i) {
    const uint32_t s0 = Rotr(w[i - 15], 7) ^ Rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
    const uint32_t s1 = Rotr(w[i - 2], 17) ^ Rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
    w[i] = w[i - 16] + s0 + w[i - 7] + s1;
  }
  uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
  for (int i = 0; i < 64; ++i) {
    const uint32_t s1 = Rotr(e, 6) ^ Rotr(e, 11) ^ Rotr(e, 25);
    const uint32_t ch = (e & f) ^ (~e & g);
    const uint32_t t1 = hh + s1 + ch + kSha256K[i] + w[i];
    const uint32_t s0 = Rotr(a, 2) ^ Rotr(a, 13) ^ Rotr(a, 22);
    const uint32_t maj = (a & b) ^ (a & c) ^ (b & c);
    const uint32_t t2 = s0 + maj;
    hh = g;
    g = f;
    f = e;
    e = d + t1;
    d = c;
    c = b;
    b = a;
    a = t1 + t2;
  }
  h[0] += a;
  h[1] += b;
  h[2] += c;
  h[3] += d;
  h[4] += e;
  h[5] += f;
  h[6] += g;
  h[7] += hh;
}

}  // namespace

std::string Sha256Hex(std::string_view data) {
  std::array<uint32_t, 8> h = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                               0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  const auto* bytes = reinterpret_cast<const unsigned char*>(data.data());
  size_t full = data.size() / 64;
  for (size_t i = 0; i < full; ++i) Sha256Block(h, bytes + 64 * i);
  // Padding: 0x80, zeros, then the bit length as a 64-bit big-endian integer.
  std::array<unsigned char, 128> tail{};
  const size_t rest = data.size() - 64 * full;
  std::copy(bytes + 64 * full, bytes + data.size(), tail.begin());
  tail[rest] = 0x80;
  const size_t tail_len = rest + 1 + 8 <= 64 ? 64 : 128;
  const uint64_t bits = static_cast<uint64_t>(data.size()) * 8;
  for (int i = 0; i < 8; ++i) tail[tail_len - 1 - i] = static_cast<unsigned char>(bits >> (8 * i));
  Sha256Block(h, tail.data());
  if (tail_len == 128) Sha256Block(h, tail.data() + 64);
  std::string hex;
  hex.reserve(64);
  for (uint32_t v : h) hex += fmt::format("{:08x}", v);
  return hex;
}

std::string DatasetFingerprint(const std::vector<Problem>& problems) {
  std::string canonical;
  auto field = [&](std::string_view s) {
    canonical += std::to_string(s.size());
    canonical += ':';
    canonical += s;
    canonical += '\n';
  };
  for (const Problem& p : problems) {
    field(p.id);
    field(p.question);
    field(p.gold_answer);
    field(TaskName(p.task));
  }
  return Sha256Hex(canonical);
}

}  // namespace ttc::experiments
