// Strict answer normalization, structure parsing and equivalence. See answer.h.
#include "experiments/latex/answer.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>

namespace ttc::experiments::latex {

namespace {

constexpr size_t kMaxRawChars = 20000;
constexpr size_t kMaxItems = 64;
constexpr int kMaxAnswerDepth = 24;
constexpr int kPoints = 5;

bool IsAlpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool IsDigitC(char c) { return c >= '0' && c <= '9'; }

void ReplaceAll(std::string* s, std::string_view from, std::string_view to) {
  if (from.empty()) return;
  size_t pos = 0;
  while ((pos = s->find(from, pos)) != std::string::npos) {
    s->replace(pos, from.size(), to);
    pos += to.size();
  }
}

// Replaces the command \name only where it is a whole command (not a prefix of a longer one).
void ReplaceCmd(std::string* s, std::string_view name, std::string_view to) {
  std::string pat = "\\" + std::string(name);
  size_t pos = 0;
  while ((pos = s->find(pat, pos)) != std::string::npos) {
    size_t end = pos + pat.size();
    if (end < s->size() && IsAlpha((*s)[end])) {
      pos = end;
      continue;
    }
    s->replace(pos, pat.size(), to);
    pos += to.size();
  }
}

std::string Trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return std::string(s.substr(b, e - b));
}

// Index just past the brace group starting at s[open] == '{', or npos when unbalanced.
size_t MatchBrace(std::string_view s, size_t open) {
  int depth = 0;
  for (size_t i = open; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size() && (s[i + 1] == '{' || s[i + 1] == '}')) {
      ++i;
      continue;
    }
    if (s[i] == '{') ++depth;
    if (s[i] == '}' && --depth == 0) return i + 1;
  }
  return std::string::npos;
}

// The content of the last \boxed{} / \fbox{}, with nearby earlier boxes joined by commas
// (Math-Verify style).
std::optional<std::string> ExtractBoxed(std::string_view s) {
  struct Box {
    size_t start, end;
    std::string content;
  };
  std::vector<Box> boxes;
  size_t pos = 0;
  while (true) {
    size_t b = s.find("\\boxed", pos);
    size_t f = s.find("\\fbox", pos);
    size_t at = std::min(b, f);
    if (at == std::string_view::npos) break;
    size_t after = at + (at == b ? 6 : 5);
    while (after < s.size() && s[after] == ' ') ++after;
    if (after < s.size() && s[after] == '{') {
      size_t end = MatchBrace(s, after);
      if (end == std::string_view::npos) {
        boxes.push_back({at, s.size(), std::string(s.substr(after + 1))});
        break;
      }
      boxes.push_back({at, end, std::string(s.substr(after + 1, end - after - 2))});
      pos = end;
    } else {
      size_t end = s.find('$', after);
      if (end == std::string_view::npos) end = s.size();
      boxes.push_back({at, end, std::string(s.substr(after, end - after))});
      pos = std::max(end, after + 1);
    }
    if (boxes.size() > 64) break;
  }
  if (boxes.empty()) return std::nullopt;
  std::vector<std::string> parts = {boxes.back().content};
  for (size_t k = boxes.size() - 1; k > 0; --k) {
    std::string_view gap = s.substr(boxes[k - 1].end, boxes[k].start - boxes[k - 1].end);
    bool joiner =
        gap.find("and") != std::string_view::npos || gap.find(',') != std::string_view::npos ||
        gap.find(" or ") != std::string_view::npos || gap.find(';') != std::string_view::npos;
    if (!(gap.size() < 10 || (gap.size() < 70 && joiner))) break;
    if (std::find(parts.begin(), parts.end(), boxes[k - 1].content) == parts.end()) {
      parts.insert(parts.begin(), boxes[k - 1].content);
    }
  }
  std::string out;
  for (size_t k = 0; k < parts.size(); ++k) out += (k ? "," : "") + parts[k];
  // "\\boxed{20} percent": the unit written after the box belongs to the answer.
  std::string_view tail = s.substr(std::min(boxes.back().end, s.size()));
  size_t t = 0;
  while (t < tail.size() && (tail[t] == ' ' || tail[t] == '$')) ++t;
  tail = tail.substr(t);
  if (tail.substr(0, 2) == "\\%" || tail.substr(0, 1) == "%" || tail.substr(0, 7) == "percent")
    out += "%";
  return out;
}

// The content of the last math environment: $$..$$, \[..\], $..$ or \(..\) (inline ones on one
// line).
std::optional<std::string> ExtractMathEnv(std::string_view s) {
  struct Env {
    size_t start;
    std::string content;
  };
  std::optional<Env> last;
  size_t i = 0;
  while (i < s.size()) {
    if (s[i] == '\\' && i + 1 < s.size()) {
      char d = s[i + 1];
      if (d == '[' || d == '(') {
        const char* close = d == '[' ? "\\]" : "\\)";
        size_t end = s.find(close, i + 2);
        if (end != std::string_view::npos) {
          std::string_view c = s.substr(i + 2, end - i - 2);
          if (d == '[' || c.find('\n') == std::string_view::npos) last = Env{i, std::string(c)};
          i = end + 2;
          continue;
        }
      }
      i += 2;
      continue;
    }
    if (s[i] == '$') {
      bool dbl = i + 1 < s.size() && s[i + 1] == '$';
      size_t from = i + (dbl ? 2 : 1);
      size_t end = from;
      while (end < s.size()) {
        if (s[end] == '\\') {
          end += 2;
          continue;
        }
        if (s[end] == '$') break;
        ++end;
      }
      if (end >= s.size()) break;
      std::string_view c = s.substr(from, end - from);
      if (dbl || c.find('\n') == std::string_view::npos) last = Env{i, std::string(c)};
      i = end + (dbl ? 2 : 1);
      continue;
    }
    ++i;
  }
  if (!last) return std::nullopt;
  return last->content;
}

bool AllDigitsView(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// Repeating decimals: 0.\\overline{3} -> (0+\\frac{3}{9}), 1.2\\overline{45} ->
// (1+\\frac{243}{990}).
void RewriteRepeatingDecimals(std::string* s) {
  size_t pos = 0;
  while ((pos = s->find("\\overline{", pos)) != std::string::npos) {
    size_t close = s->find('}', pos);
    if (close == std::string::npos) return;
    std::string rep = s->substr(pos + 10, close - pos - 10);
    size_t b = pos;
    while (b > 0 && IsDigitC((*s)[b - 1])) --b;
    std::string frac = s->substr(b, pos - b);
    if (b == 0 || (*s)[b - 1] != '.' || !AllDigitsView(rep) || rep.size() > 40 ||
        frac.size() > 40) {
      pos = close;
      continue;
    }
    size_t dot = b - 1;
    size_t w = dot;
    while (w > 0 && IsDigitC((*s)[w - 1])) --w;
    std::string whole = s->substr(w, dot - w);
    using boost::multiprecision::cpp_int;
    auto big = [](const std::string& d) {
      cpp_int v = 0;
      for (char c : d) v = v * 10 + (c - '0');
      return v;
    };
    cpp_int a = big(frac), ar = big(frac + rep);
    cpp_int den = boost::multiprecision::pow(cpp_int(10), static_cast<unsigned>(frac.size())) *
                  (boost::multiprecision::pow(cpp_int(10), static_cast<unsigned>(rep.size())) - 1);
    std::string out = "(" + (whole.empty() ? std::string("0") : whole) + "+\\frac{" +
                      cpp_int(ar - a).str() + "}{" + den.str() + "})";
    s->replace(w, close + 1 - w, out);
    pos = w + out.size();
  }
}

// Lower-case copy for anchor search.
std::string LowerCopy(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// The text after the last "final answer ... is", "answer is" or "answer:", cut at "I hope" and chat
// markers.
std::optional<std::string> AfterAnswerAnchor(std::string_view raw) {
  std::string low = LowerCopy(raw);
  size_t start = std::string::npos;
  size_t fa = low.rfind("final answer");
  if (fa != std::string::npos) {
    size_t is = low.find(" is ", fa);
    size_t sentence_end = low.find(". ", fa);
    if (is != std::string::npos && is - fa <= 112 &&
        (sentence_end == std::string::npos || sentence_end > is)) {
      start = is + 4;
    } else {
      size_t colon = low.find(':', fa);
      if (colon != std::string::npos && colon - fa <= 14) start = colon + 1;
    }
  }
  if (start == std::string::npos) {
    size_t ai = low.rfind("answer is");
    if (ai != std::string::npos) start = ai + 9;
  }
  if (start == std::string::npos) {
    size_t ac = low.rfind("answer:");
    if (ac != std::string::npos) start = ac + 7;
  }
  if (start == std::string::npos) return std::nullopt;
  std::string rest(raw.substr(start));
  for (const char* stop : {"I hope", "<|", "\n\n"}) {
    size_t at = rest.find(stop);
    if (at != std::string::npos) rest = rest.substr(0, at);
  }
  return rest;
}

// Running text rather than a formula: several plain words of three or more letters.
bool IsProse(std::string_view s) {
  int words = 0;
  size_t i = 0;
  while (i < s.size()) {
    if (IsAlpha(s[i]) && (i == 0 || (!IsAlpha(s[i - 1]) && s[i - 1] != '\\'))) {
      size_t j = i;
      while (j < s.size() && IsAlpha(s[j])) ++j;
      bool in_text = i >= 6 && s.substr(i - 6, 6) == "\\text{";
      if (j - i >= 3 && !in_text) ++words;
      i = j;
      continue;
    }
    ++i;
  }
  return words >= 3;
}

// The last number in running text: 12,000,023, 2,74 (decimal comma), 2/3, 100%.
std::optional<std::string> LastNumber(std::string_view s, bool free_standing = false) {
  std::optional<std::string> last;
  size_t i = 0;
  while (i < s.size()) {
    if (!IsDigitC(s[i])) {
      ++i;
      continue;
    }
    size_t b = i;
    bool glued = b > 0 && (IsAlpha(s[b - 1]) || s[b - 1] == '_' || s[b - 1] == '^');
    size_t j = i;
    while (j < s.size() && IsDigitC(s[j])) ++j;
    std::string num(s.substr(b, j - b));
    // Thousands groups, then a decimal part, then a fraction.
    while (j + 3 < s.size() + 0 && s[j] == ',' && IsDigitC(s[j + 1]) && IsDigitC(s[j + 2]) &&
           IsDigitC(s[j + 3]) && (j + 4 >= s.size() || !IsDigitC(s[j + 4]))) {
      num += std::string(s.substr(j + 1, 3));
      j += 4;
    }
    if (j + 1 < s.size() && (s[j] == '.' || s[j] == ',') && IsDigitC(s[j + 1])) {
      size_t k = j + 1;
      while (k < s.size() && IsDigitC(s[k])) ++k;
      num += "." + std::string(s.substr(j + 1, k - j - 1));
      j = k;
    }
    if (j + 1 < s.size() && s[j] == '/' && IsDigitC(s[j + 1])) {
      size_t k = j + 1;
      while (k < s.size() && IsDigitC(s[k])) ++k;
      num += std::string(s.substr(j, k - j));
      j = k;
    }
    if (j < s.size() && s[j] == '%') num += "%";
    if (b > 0 && s[b - 1] == '-') num = "-" + num;
    if (!(free_standing && glued)) last = num;
    i = j;
  }
  return last;
}

// Drops a trailing unit written as \text{...} (optionally squared) or as a known unit word.
bool StripTrailingUnit(std::string* s) {
  std::string t = Trim(*s);
  // \text{ cm}^2, \mbox{ inches}^2
  for (const char* suffix : {"^2", "^{2}", "^3", "^{3}"}) {
    if (t.size() > strlen(suffix) &&
        t.compare(t.size() - strlen(suffix), strlen(suffix), suffix) == 0 &&
        t[t.size() - strlen(suffix) - 1] == '}') {
      std::string head = t.substr(0, t.size() - strlen(suffix));
      std::string tmp = head;
      if (StripTrailingUnit(&tmp)) {
        *s = tmp;
        return true;
      }
    }
  }
  if (!t.empty() && t.back() == '}') {
    size_t tx = t.rfind("\\text{");
    if (tx != std::string::npos && MatchBrace(t, tx + 5) == t.size()) {
      std::string head = Trim(t.substr(0, tx));
      std::string inner = Trim(t.substr(tx + 6, t.size() - tx - 7));
      bool numeric_inner = !inner.empty() && std::all_of(inner.begin(), inner.end(), [](char c) {
        return IsDigitC(c) || c == '.' || c == ',' || c == ' ';
      });
      if (!head.empty() && !numeric_inner && head.back() != '{') {
        *s = head;
        return true;
      }
    }
  }
  static const char* kUnits[] = {
      "square units",
      "sq units",
      "square feet",
      "square inches",
      "square meters",
      "square centimeters",
      "cubic feet",
      "cubic inches",
      "cubic meters",
      "cubic centimeters",
      "units",
      "unit",
      "cm^2",
      "cm^3",
      "m^2",
      "m^3",
      "km",
      "cm",
      "mm",
      "m²",
      "cm²",
      "meters",
      "meter",
      "metres",
      "centimeters",
      "inches",
      "inch",
      "feet",
      "foot",
      "ft",
      "miles",
      "mile",
      "mph",
      "yards",
      "yard",
      "dollars",
      "dollar",
      "cents",
      "cent",
      "degrees",
      "degree",
      "hours",
      "hour",
      "minutes",
      "minute",
      "seconds",
      "second",
      "days",
      "day",
      "weeks",
      "week",
      "years",
      "year",
      "months",
      "month",
      "pounds",
      "pound",
      "ounces",
      "ounce",
      "kg",
      "grams",
      "gram",
      "liters",
      "liter",
      "gallons",
      "gallon",
      "people",
      "students",
      "ways",
      "times",
      "points",
      "sq",
      "m",
      "g",
      "s",
  };
  for (const char* u : kUnits) {
    size_t n = strlen(u);
    if (t.size() <= n) continue;
    if (strncasecmp(t.c_str() + t.size() - n, u, n) != 0) continue;
    char before = t[t.size() - n - 1];
    bool single_letter = n <= 2 && (strcmp(u, "m") == 0 || strcmp(u, "g") == 0 ||
                                    strcmp(u, "s") == 0 || strcmp(u, "sq") == 0);
    // Single-letter units only right after a number with a space ("5 m"), never inside an
    // expression.
    if (single_letter) {
      if (before != ' ' || t.size() < n + 2 || !IsDigitC(t[t.size() - n - 2])) continue;
    } else if (!(before == ' ' || IsDigitC(before) || before == '}')) {
      continue;
    }
    std::string head = Trim(t.substr(0, t.size() - n));
    if (head.empty() || std::none_of(head.begin(), head.end(), [](char c) { return IsDigitC(c); }))
      continue;
    *s = head;
    return true;
  }
  return false;
}

// ---- top-level splitting ----

bool IsOpen(std::string_view s, size_t i, size_t* len) {
  if (s[i] == '(' || s[i] == '[' || s[i] == '{') {
    *len = 1;
    return true;
  }
  if (s[i] == '\\' && i + 1 < s.size() && s[i + 1] == '{') {
    *len = 2;
    return true;
  }
  if (s.compare(i, 7, "\\langle") == 0) {
    *len = 7;
    return true;
  }
  if (s.compare(i, 7, "\\begin{") == 0) {
    size_t e = s.find('}', i);
    *len = e == std::string_view::npos ? 7 : e - i + 1;
    return true;
  }
  return false;
}

bool IsClose(std::string_view s, size_t i, size_t* len) {
  if (s[i] == ')' || s[i] == ']' || s[i] == '}') {
    *len = 1;
    return true;
  }
  if (s[i] == '\\' && i + 1 < s.size() && s[i + 1] == '}') {
    *len = 2;
    return true;
  }
  if (s.compare(i, 7, "\\rangle") == 0) {
    *len = 7;
    return true;
  }
  if (s.compare(i, 5, "\\end{") == 0) {
    size_t e = s.find('}', i);
    *len = e == std::string_view::npos ? 5 : e - i + 1;
    return true;
  }
  return false;
}

// Calls visit(i) for every index at bracket depth 0, skipping bracketed spans. Returns false if
// unbalanced.
template <typename Visit>
bool ScanTop(std::string_view s, Visit visit) {
  int depth = 0;
  size_t i = 0;
  while (i < s.size()) {
    size_t len = 0;
    if (IsOpen(s, i, &len)) {
      ++depth;
      i += len;
      continue;
    }
    if (IsClose(s, i, &len)) {
      if (--depth < 0) return false;
      i += len;
      continue;
    }
    if (depth == 0) {
      size_t skip = visit(i);
      if (skip > 0) {
        i += skip;
        continue;
      }
    }
    if (s[i] == '\\') {
      size_t j = i + 1;
      while (j < s.size() && IsAlpha(s[j])) ++j;
      i = std::max(j, i + 1);
      continue;
    }
    ++i;
  }
  return depth == 0;
}

// Length of the command \name at i when it is exactly that command.
size_t CmdAt(std::string_view s, size_t i, std::string_view name) {
  if (s[i] != '\\' || s.compare(i + 1, name.size(), name) != 0) return 0;
  size_t end = i + 1 + name.size();
  if (end < s.size() && IsAlpha(s[end])) return 0;
  return name.size() + 1;
}

// Relation operator at i: its length and kind.
size_t RelAt(std::string_view s, size_t i, RelOp* op) {
  char c = s[i];
  char n = i + 1 < s.size() ? s[i + 1] : 0;
  if (c == '<') {
    *op = n == '=' ? RelOp::kLe : RelOp::kLt;
    return n == '=' ? 2 : 1;
  }
  if (c == '>') {
    *op = n == '=' ? RelOp::kGe : RelOp::kGt;
    return n == '=' ? 2 : 1;
  }
  if (c == '!' && n == '=') {
    *op = RelOp::kNe;
    return 2;
  }
  if (c == '=') {
    *op = RelOp::kEq;
    return 1;
  }
  if (c != '\\') return 0;
  struct Named {
    const char* name;
    RelOp op;
  };
  static const Named kNamed[] = {{"le", RelOp::kLe}, {"ge", RelOp::kGe}, {"lt", RelOp::kLt},
                                 {"gt", RelOp::kGt}, {"ne", RelOp::kNe}, {"approx", RelOp::kApprox},
                                 {"in", RelOp::kIn}};
  for (const Named& nm : kNamed) {
    size_t len = CmdAt(s, i, nm.name);
    if (len) {
      *op = nm.op;
      return len;
    }
  }
  return 0;
}

struct Split {
  std::vector<std::string> parts;
  std::vector<RelOp> ops;
};

Split SplitRelations(std::string_view s) {
  Split out;
  size_t start = 0;
  bool ok = ScanTop(s, [&](size_t i) -> size_t {
    RelOp op;
    size_t len = RelAt(s, i, &op);
    if (len) {
      out.parts.emplace_back(s.substr(start, i - start));
      out.ops.push_back(op);
      start = i + len;
    }
    return len;
  });
  if (!ok) return Split{};
  out.parts.emplace_back(s.substr(start));
  return out;
}

std::vector<std::string> SplitOn(std::string_view s, char sep, bool* spaced) {
  std::vector<std::string> parts;
  size_t start = 0;
  bool ok = ScanTop(s, [&](size_t i) -> size_t {
    if (s[i] == sep) {
      parts.emplace_back(s.substr(start, i - start));
      if (spaced && i + 1 < s.size() && s[i + 1] == ' ') *spaced = true;
      start = i + 1;
      return 1;
    }
    return 0;
  });
  if (!ok) return {};
  parts.emplace_back(s.substr(start));
  return parts;
}

std::vector<std::string> SplitCup(std::string_view s) {
  std::vector<std::string> parts;
  size_t start = 0;
  bool ok = ScanTop(s, [&](size_t i) -> size_t {
    size_t len = CmdAt(s, i, "cup");
    if (len) {
      parts.emplace_back(s.substr(start, i - start));
      start = i + len;
    }
    return len;
  });
  if (!ok) return {};
  parts.emplace_back(s.substr(start));
  return parts;
}

std::string NoSpaces(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    if (!std::isspace(static_cast<unsigned char>(c))) out += c;
  }
  return out;
}

std::string TextKey(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s.compare(i, 6, "\\text{") == 0) {
      i += 5;
      continue;
    }
    char c = s[i];
    if (std::isalnum(static_cast<unsigned char>(c))) out += static_cast<char>(std::tolower(c));
  }
  return out;
}

bool AllDigits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return IsDigitC(c); });
}

Answer ParseAnswerRec(std::string_view in, int depth);

Answer MakeText(std::string_view s) {
  Answer a;
  a.kind = AnswerKind::kText;
  a.raw = NoSpaces(s);
  a.text = TextKey(s);
  a.source = std::string(s);
  return a;
}

Answer ParseScalar(std::string s) {
  Answer a;
  a.raw = NoSpaces(s);
  // Mixed numbers: "4 4/9" and 2\frac{1}{4}.
  {
    std::string t = Trim(s);
    bool neg = !t.empty() && t[0] == '-';
    std::string body = neg ? t.substr(1) : t;
    size_t sp = body.find(' ');
    size_t sl = body.find('/');
    if (sp != std::string::npos && sl != std::string::npos && sl > sp &&
        AllDigits(body.substr(0, sp)) && AllDigits(body.substr(sp + 1, sl - sp - 1)) &&
        AllDigits(body.substr(sl + 1))) {
      s = std::string(neg ? "-" : "") + "(" + body.substr(0, sp) + "+" + body.substr(sp + 1) + ")";
    }
    size_t fr = body.find("\\frac{");
    if (fr != std::string::npos && fr > 0 && AllDigits(body.substr(0, fr))) {
      size_t e1 = MatchBrace(body, fr + 5);
      if (e1 != std::string::npos && e1 < body.size() && body[e1] == '{') {
        size_t e2 = MatchBrace(body, e1);
        if (e2 == body.size() && AllDigits(body.substr(fr + 6, e1 - fr - 7)) &&
            AllDigits(body.substr(e1 + 1, e2 - e1 - 2))) {
          s = std::string(neg ? "-" : "") + "(" + body.substr(0, fr) + "+" + body.substr(fr) + ")";
        }
      }
    }
    // Thousands separated by spaces: "1 000", "12 345 678.5".
    if (t.find(' ') != std::string::npos) {
      std::vector<std::string> groups;
      size_t p = 0;
      std::string b = body;
      while (true) {
        size_t q = b.find(' ', p);
        groups.push_back(b.substr(p, q == std::string::npos ? std::string::npos : q - p));
        if (q == std::string::npos) break;
        p = q + 1;
      }
      bool ok = groups.size() > 1 && AllDigits(groups[0]) && groups[0].size() <= 3;
      for (size_t k = 1; ok && k < groups.size(); ++k) {
        std::string g = groups[k];
        if (k + 1 == groups.size()) g = g.substr(0, g.find('.'));
        ok = g.size() == 3 && AllDigits(g) &&
             (k + 1 < groups.size() || groups[k].size() == 3 || AllDigits(groups[k].substr(4)));
      }
      if (ok) {
        std::string merged = neg ? "-" : "";
        for (auto& g : groups) merged += g;
        s = merged;
      }
    }
  }
  std::optional<Expr> e = ParseExpr(s);
  if (!e) return MakeText(s);
  a.kind = AnswerKind::kExpr;
  a.exact = EvalExact(*e);
  a.expr = std::move(e);
  return a;
}

bool WholeBracketed(std::string_view s, size_t* open_len, size_t* close_len) {
  if (s.empty()) return false;
  size_t len = 0;
  if (!IsOpen(s, 0, &len) || s.compare(0, 7, "\\begin{") == 0) return false;
  *open_len = len;
  int depth = 0;
  size_t i = 0;
  while (i < s.size()) {
    size_t l = 0;
    if (IsOpen(s, i, &l)) {
      ++depth;
      i += l;
      continue;
    }
    if (IsClose(s, i, &l)) {
      --depth;
      if (depth == 0) {
        *close_len = l;
        return i + l == s.size();
      }
      i += l;
      continue;
    }
    if (s[i] == '\\') {
      size_t j = i + 1;
      while (j < s.size() && IsAlpha(s[j])) ++j;
      i = std::max(j, i + 1);
      continue;
    }
    ++i;
  }
  return false;
}

Answer ParseMatrix(std::string_view s, int depth) {
  // \begin{pmatrix} a & b \\ c & d \end{pmatrix}
  size_t b = s.find('}');
  size_t e = s.rfind("\\end{");
  Answer m;
  m.kind = AnswerKind::kMatrix;
  m.raw = NoSpaces(s);
  std::string body(s.substr(b + 1, e - b - 1));
  // \begin{array}{cc} carries a column spec.
  if (s.compare(0, 13, "\\begin{array}") == 0 && !body.empty() && body[0] == '{') {
    size_t close = MatchBrace(body, 0);
    if (close != std::string::npos) body = body.substr(close);
  }
  std::vector<std::string> rows;
  size_t p = 0;
  while (true) {
    size_t q = body.find("\\\\", p);
    std::string row = Trim(body.substr(p, q == std::string::npos ? std::string::npos : q - p));
    if (!row.empty()) rows.push_back(row);
    if (q == std::string::npos) break;
    p = q + 2;
  }
  if (rows.empty() || rows.size() > kMaxItems) return MakeText(s);
  for (const std::string& row : rows) {
    std::vector<std::string> cells = SplitOn(row, '&', nullptr);
    if (cells.empty()) return MakeText(s);
    if (m.cols == 0) m.cols = static_cast<int>(cells.size());
    if (static_cast<int>(cells.size()) != m.cols) return MakeText(s);
    for (const std::string& c : cells) m.items.push_back(ParseAnswerRec(c, depth + 1));
    if (m.items.size() > kMaxItems * 4) return MakeText(s);
  }
  m.rows = static_cast<int>(rows.size());
  return m;
}

Answer ParseAnswerRec(std::string_view in, int depth) {
  std::string s = Trim(in);
  if (depth > kMaxAnswerDepth || s.size() > kMaxExprChars) return MakeText(s);
  bool percent = false;
  while (!s.empty() && s.back() == '%') {
    percent = true;
    s = Trim(std::string_view(s).substr(0, s.size() - 1));
  }
  if (s.empty()) return MakeText(s);

  // Relations. "x=1, y=2" splits on commas first.
  Split rel = SplitRelations(s);
  if (rel.ops.size() >= 2) {
    bool spaced = false;
    std::vector<std::string> commas = SplitOn(s, ',', &spaced);
    if (commas.size() > 1) {
      int rel_parts = 0;
      for (auto& c : commas) rel_parts += SplitRelations(c).ops.empty() ? 0 : 1;
      if (rel_parts >= 2) {
        Answer seq;
        seq.kind = AnswerKind::kSeq;
        seq.raw = NoSpaces(s);
        for (auto& c : commas) seq.items.push_back(ParseAnswerRec(c, depth + 1));
        return seq;
      }
    }
  }
  if (!rel.ops.empty() && rel.parts.size() <= kMaxItems) {
    Answer r;
    r.kind = AnswerKind::kRel;
    r.raw = NoSpaces(s);
    r.ops = rel.ops;
    for (auto& p : rel.parts) {
      if (Trim(p).empty()) return MakeText(s);
      r.items.push_back(ParseAnswerRec(p, depth + 1));
    }
    return r;
  }
  std::vector<std::string> cups = SplitCup(s);
  if (cups.size() > 1 && cups.size() <= kMaxItems) {
    Answer u;
    u.kind = AnswerKind::kUnion;
    u.raw = NoSpaces(s);
    for (auto& p : cups) u.items.push_back(ParseAnswerRec(p, depth + 1));
    return u;
  }
  bool spaced = false;
  std::vector<std::string> commas = SplitOn(s, ',', &spaced);
  if (commas.size() > 1 && commas.size() <= kMaxItems) {
    // 7,425,000 and 1,000.99 are numbers, not lists.
    bool thousands =
        !spaced && AllDigits(commas[0]) && commas[0].size() <= 3 && commas[0][0] != '0';
    for (size_t k = 1; thousands && k < commas.size(); ++k) {
      std::string g = commas[k];
      if (k + 1 == commas.size() && g.find('.') == 3 && AllDigits(g.substr(4))) g = g.substr(0, 3);
      thousands = g.size() == 3 && AllDigits(g);
    }
    if (thousands) {
      std::string merged;
      for (auto& c : commas) merged += c;
      Answer a = ParseScalar(merged);
      a.percent = percent;
      return a;
    }
    Answer seq;
    seq.kind = AnswerKind::kSeq;
    seq.raw = NoSpaces(s);
    seq.spaced = spaced;
    for (auto& c : commas) seq.items.push_back(ParseAnswerRec(c, depth + 1));
    return seq;
  }
  size_t ol = 0, cl = 0;
  if (WholeBracketed(s, &ol, &cl)) {
    std::string inner = s.substr(ol, s.size() - ol - cl);
    char open = ol == 2 ? '{' : ol == 7 ? '(' : s[0];
    char close = cl == 2 ? '}' : cl == 7 ? ')' : s.back();
    if (open == '{' && ol == 1) {
      Answer a = ParseAnswerRec(inner, depth + 1);  // a plain TeX group
      a.percent = a.percent || percent;
      return a;
    }
    bool inner_spaced = false;
    std::vector<std::string> items = SplitOn(inner, ',', &inner_spaced);
    if (open == '{' || items.size() > 1) {
      Answer seq;
      seq.kind = AnswerKind::kSeq;
      seq.raw = NoSpaces(s);
      seq.open = open;
      seq.close = close;
      if (items.size() > kMaxItems) return MakeText(s);
      if (!(items.size() == 1 && Trim(items[0]).empty())) {
        for (auto& c : items) seq.items.push_back(ParseAnswerRec(c, depth + 1));
      }
      return seq;
    }
    if ((open == '(' && close == ')') || (open == '[' && close == ']')) {
      Answer a = ParseAnswerRec(inner, depth + 1);
      if (a.kind != AnswerKind::kExpr) return a;  // (C), (\begin{pmatrix}..\end{pmatrix})
    }
  }
  if (s.compare(0, 7, "\\begin{") == 0 && s.rfind("\\end{") != std::string::npos &&
      s.back() == '}' && s.find("matrix") != std::string::npos) {
    return ParseMatrix(s, depth);
  }
  if (s.compare(0, 13, "\\begin{array}") == 0 && s.back() == '}') return ParseMatrix(s, depth);
  if (s.compare(0, 6, "\\text{") == 0 && MatchBrace(s, 5) == s.size()) {
    std::string inner = Trim(s.substr(6, s.size() - 7));
    Answer t = MakeText(inner);
    // \text{13} is a number spelled in text mode; keep it text (as Math-Verify does) but let it
    // parse too.
    t.percent = percent;
    return t;
  }
  Answer a = ParseScalar(s);
  a.percent = percent;
  return a;
}

// ---- comparison ----

uint64_t Fnv(std::string_view s) {
  uint64_t h = 1469598103934665603ull;
  for (char c : s) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ull;
  }
  return h;
}

double PointValue(const std::string& name, int point) {
  uint64_t z = Fnv(name) + 0x9e3779b97f4a7c15ull * static_cast<uint64_t>(point + 1);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  z ^= z >> 31;
  return 0.35 + 2.0 * static_cast<double>(z >> 11) / static_cast<double>(1ull << 53);
}

std::vector<double> Bind(const Expr& e, int point) {
  std::vector<double> v(e.vars.size());
  for (size_t k = 0; k < e.vars.size(); ++k) v[k] = PointValue(e.vars[k], point);
  return v;
}

bool Close(Complex a, Complex b, double tol) {
  if (std::isnan(a.real()) || std::isnan(a.imag()) || std::isnan(b.real()) || std::isnan(b.imag()))
    return false;
  if (std::isinf(a.real()) || std::isinf(b.real())) return a == b;
  double scale = std::max({1.0, std::abs(a), std::abs(b)});
  return std::abs(a - b) <= tol * scale;
}

bool Finite(Complex a) { return std::isfinite(a.real()) && std::isfinite(a.imag()); }

bool HasVars(const Expr& e) { return !e.vars.empty(); }

// A decimal written with enough places counts as the value rounded to those places (0.3333 for
// 1/3).
bool RoundsTo(const Answer& dec, Complex other) {
  if (!dec.expr || dec.expr->lone_decimal_places < 4 || other.imag() != 0) return false;
  double v = EvalNumeric(*dec.expr, {}, 0).real();
  double half_ulp = 0.5 * std::pow(10.0, -dec.expr->lone_decimal_places);
  return std::abs(v - other.real()) <= half_ulp * (1 + 1e-9) + 1e-15 * std::abs(v);
}

bool ScalarEqualMasks(const Answer& g, uint32_t gm, const Answer& p, uint32_t pm,
                      const CompareOptions& o) {
  const Expr& ge = *g.expr;
  const Expr& pe = *p.expr;
  bool no_vars = !HasVars(ge) && !HasVars(pe);
  if (no_vars) {
    // A gold percent accepts the bare number or its fraction; a predicted percent means value /
    // 100.
    bool g_pct = g.percent && !p.percent, p_pct = p.percent && !g.percent;
    if (!o.sal && g.exact && p.exact && ge.pm_count == 0 && pe.pm_count == 0) {
      const BigRational& a = *g.exact;
      const BigRational& b = *p.exact;
      if (p_pct ? a * 100 == b : (a == b || (g_pct && a == b * 100))) return true;
      // Both exact and unequal: only a rounded decimal can still match.
      Complex av = EvalNumeric(ge, {}, gm), bv = EvalNumeric(pe, {}, pm);
      if (g_pct) av /= 100.0;
      if (p_pct) bv /= 100.0;
      return RoundsTo(p, av) || RoundsTo(g, bv);
    }
    Complex a = EvalNumeric(ge, {}, gm), b = EvalNumeric(pe, {}, pm);
    if (!Finite(a) && !ge.has_inf) return false;
    if (!Finite(b) && !pe.has_inf) return false;
    if (p_pct) return Close(a, b / 100.0, o.rel_tol);
    if (Close(a, b, o.rel_tol)) return true;
    if (g_pct && Close(a / 100.0, b, o.rel_tol)) return true;
    return RoundsTo(p, a) || RoundsTo(g, b);
  }
  int valid = 0;
  for (int k = 0; k < kPoints; ++k) {
    Complex a = EvalNumeric(ge, Bind(ge, k), gm), b = EvalNumeric(pe, Bind(pe, k), pm);
    bool fa = Finite(a), fb = Finite(b);
    if (!fa && !fb) continue;
    if (fa != fb) return false;
    if (!Close(a, b, std::max(o.rel_tol, 1e-8))) return false;
    ++valid;
  }
  return valid >= 2;
}

bool ScalarEqual(const Answer& g, const Answer& p, const CompareOptions& o) {
  int gk = g.expr->pm_count, pk = p.expr->pm_count;
  if (gk == 0 && pk == 0) return ScalarEqualMasks(g, 0, p, 0, o);
  if (gk != pk) return false;
  // a ± b against c ± d: the same set of values.
  uint32_t n = 1u << gk;
  for (uint32_t m = 0; m < n; ++m) {
    bool found = false;
    for (uint32_t q = 0; q < n && !found; ++q) found = ScalarEqualMasks(g, m, p, q, o);
    if (!found) return false;
  }
  for (uint32_t q = 0; q < n; ++q) {
    bool found = false;
    for (uint32_t m = 0; m < n && !found; ++m) found = ScalarEqualMasks(g, m, p, q, o);
    if (!found) return false;
  }
  return true;
}

bool Match(const Answer& g, const Answer& p, const CompareOptions& o, int depth);

// Unordered: every gold item pairs with a distinct predicted item.
bool MatchUnordered(const std::vector<Answer>& g, const std::vector<Answer>& p,
                    const CompareOptions& o, int depth) {
  if (g.size() != p.size()) return false;
  std::vector<bool> used(p.size(), false);
  for (const Answer& gi : g) {
    bool found = false;
    for (size_t k = 0; k < p.size() && !found; ++k) {
      if (!used[k] && Match(gi, p[k], o, depth + 1)) {
        used[k] = true;
        found = true;
      }
    }
    if (!found) return false;
  }
  return true;
}

bool MatchOrdered(const std::vector<Answer>& g, const std::vector<Answer>& p,
                  const CompareOptions& o, int depth) {
  if (g.size() != p.size()) return false;
  for (size_t k = 0; k < g.size(); ++k) {
    if (!Match(g[k], p[k], o, depth + 1)) return false;
  }
  return true;
}

bool MatchPmSet(const Answer& pm_side, const std::vector<Answer>& set, bool pm_is_gold,
                const CompareOptions& o) {
  uint32_t n = 1u << pm_side.expr->pm_count;
  if (set.size() != n) return false;
  std::vector<bool> used(set.size(), false);
  for (uint32_t m = 0; m < n; ++m) {
    bool found = false;
    for (size_t k = 0; k < set.size() && !found; ++k) {
      const Answer& s = set[k];
      if (used[k] || s.kind != AnswerKind::kExpr || s.expr->pm_count != 0) continue;
      bool eq = pm_is_gold ? ScalarEqualMasks(pm_side, m, s, 0, o)
                           : ScalarEqualMasks(s, 0, pm_side, m, o);
      if (eq) {
        used[k] = true;
        found = true;
      }
    }
    if (!found) return false;
  }
  return true;
}

bool IsSimpleLhs(const Answer& a) {
  if (a.kind == AnswerKind::kExpr) {
    const Expr& e = *a.expr;
    const Node& r = e.nodes[e.root];
    return r.kind == NodeKind::kVar || r.kind == NodeKind::kApply;
  }
  if (a.kind == AnswerKind::kSeq) {
    return std::all_of(a.items.begin(), a.items.end(),
                       [](const Answer& x) { return IsSimpleLhs(x); });
  }
  return false;
}

bool IsOrder(RelOp op) {
  return op == RelOp::kLt || op == RelOp::kLe || op == RelOp::kGt || op == RelOp::kGe;
}
bool IsEqLike(RelOp op) { return op == RelOp::kEq || op == RelOp::kApprox; }

// Evaluates (l - r) at the shared sample points.
bool Differences(const Answer& l, const Answer& r, std::vector<Complex>* out) {
  if (l.kind != AnswerKind::kExpr || r.kind != AnswerKind::kExpr) return false;
  if (l.expr->pm_count || r.expr->pm_count) return false;
  for (int k = 0; k < kPoints; ++k) {
    Complex a = EvalNumeric(*l.expr, Bind(*l.expr, k), 0);
    Complex b = EvalNumeric(*r.expr, Bind(*r.expr, k), 0);
    if (!Finite(a) || !Finite(b)) return false;
    out->push_back(a - b);
  }
  return true;
}

// Is h = k f for one constant k (sign: +1 needs k > 0, 0 any nonzero k)?
bool Proportional(const std::vector<Complex>& f, const std::vector<Complex>& h, int sign) {
  double fmax = 0, hmax = 0;
  for (size_t k = 0; k < f.size(); ++k) {
    fmax = std::max(fmax, std::abs(f[k]));
    hmax = std::max(hmax, std::abs(h[k]));
  }
  if (fmax < 1e-12 || hmax < 1e-12) return fmax < 1e-12 && hmax < 1e-12;
  size_t best = 0;
  for (size_t k = 1; k < f.size(); ++k) {
    if (std::abs(f[k]) > std::abs(f[best])) best = k;
  }
  Complex ratio = h[best] / f[best];
  if (std::abs(ratio.imag()) > 1e-9 * std::abs(ratio)) return false;
  if (sign > 0 && ratio.real() <= 0) return false;
  for (size_t k = 0; k < f.size(); ++k) {
    Complex want = ratio * f[k];
    if (std::abs(h[k] - want) > 1e-8 * std::max({1.0, std::abs(h[k]), std::abs(want)}))
      return false;
  }
  return true;
}

RelOp Flip(RelOp op) {
  switch (op) {
    case RelOp::kLt:
      return RelOp::kGt;
    case RelOp::kLe:
      return RelOp::kGe;
    case RelOp::kGt:
      return RelOp::kLt;
    case RelOp::kGe:
      return RelOp::kLe;
    default:
      return op;
  }
}

Answer TruncateEqChain(const Answer& r0) {
  Answer r = r0;
  // "x = 1/3 \\approx 0.33": an approximation after an exact value is commentary.
  for (size_t k = 1; k < r.ops.size(); ++k) {
    if (r.ops[k] == RelOp::kApprox && r.ops[k - 1] == RelOp::kEq) {
      r.ops.resize(k);
      r.items.resize(k + 1);
      break;
    }
  }
  if (r.items.size() <= 2 || !std::all_of(r.ops.begin(), r.ops.end(), IsEqLike)) return r;
  Answer t;
  t.kind = AnswerKind::kRel;
  t.raw = r.raw;
  t.ops = {RelOp::kEq};
  t.items = {r.items.front(), r.items.back()};
  return t;
}

bool MatchRel(const Answer& g0, const Answer& p0, const CompareOptions& o, int depth) {
  Answer g = TruncateEqChain(g0), p = TruncateEqChain(p0);
  if (g.ops.size() == 1 && p.ops.size() == 1) {
    RelOp go = g.ops[0], po = p.ops[0];
    const Answer &gl = g.items[0], &gr = g.items[1], &pl = p.items[0], &pr = p.items[1];
    if (go == RelOp::kIn || po == RelOp::kIn) {
      return go == po && gl.raw == pl.raw && Match(gr, pr, o, depth + 1);
    }
    bool scalar = gl.kind == AnswerKind::kExpr && gr.kind == AnswerKind::kExpr &&
                  pl.kind == AnswerKind::kExpr && pr.kind == AnswerKind::kExpr;
    if (IsEqLike(go) && IsEqLike(po)) {
      if (IsSimpleLhs(gl) && gl.raw == pl.raw && Match(gr, pr, o, depth + 1)) return true;
      if (!scalar) return Match(gl, pl, o, depth + 1) && Match(gr, pr, o, depth + 1);
      std::vector<Complex> f, h;
      if (!Differences(gl, gr, &f) || !Differences(pl, pr, &h)) return false;
      return Proportional(f, h, 0);
    }
    if (go == RelOp::kNe && po == RelOp::kNe) {
      if (!scalar) return false;
      std::vector<Complex> f, h;
      if (!Differences(gl, gr, &f) || !Differences(pl, pr, &h)) return false;
      return Proportional(f, h, 0);
    }
    if (IsOrder(go) && IsOrder(po)) {
      bool gs = go == RelOp::kLt || go == RelOp::kGt, ps = po == RelOp::kLt || po == RelOp::kGt;
      if (gs != ps || !scalar) return false;
      std::vector<Complex> f, h;
      // Normalize both to "big - small > 0".
      bool gless = go == RelOp::kLt || go == RelOp::kLe,
           pless = po == RelOp::kLt || po == RelOp::kLe;
      if (!(gless ? Differences(gr, gl, &f) : Differences(gl, gr, &f))) return false;
      if (!(pless ? Differences(pr, pl, &h) : Differences(pl, pr, &h))) return false;
      return Proportional(f, h, +1);
    }
    return false;
  }
  if (g.ops.size() != p.ops.size()) return false;
  if (g.ops == p.ops && MatchOrdered(g.items, p.items, o, depth)) return true;
  std::vector<RelOp> flipped;
  for (auto it = p.ops.rbegin(); it != p.ops.rend(); ++it) flipped.push_back(Flip(*it));
  if (g.ops != flipped) return false;
  std::vector<Answer> rev(p.items.rbegin(), p.items.rend());
  return MatchOrdered(g.items, rev, o, depth);
}

Answer Infinity(bool negative) { return ParseAnswerRec(negative ? "-\\infty" : "\\infty", 0); }

// A gold inequality in one variable as the interval it describes: 0 < x <= 1 is (0, 1].
std::optional<Answer> RelAsInterval(const Answer& r) {
  auto make = [](Answer lo, bool lo_open, Answer hi, bool hi_open) {
    Answer s;
    s.kind = AnswerKind::kSeq;
    s.open = lo_open ? '(' : '[';
    s.close = hi_open ? ')' : ']';
    s.items = {std::move(lo), std::move(hi)};
    return s;
  };
  auto strict = [](RelOp op) { return op == RelOp::kLt || op == RelOp::kGt; };
  if (r.ops.size() == 2 && IsSimpleLhs(r.items[1])) {
    RelOp a = r.ops[0], b = r.ops[1];
    bool up = (a == RelOp::kLt || a == RelOp::kLe) && (b == RelOp::kLt || b == RelOp::kLe);
    bool down = (a == RelOp::kGt || a == RelOp::kGe) && (b == RelOp::kGt || b == RelOp::kGe);
    if (up) return make(r.items[0], strict(a), r.items[2], strict(b));
    if (down) return make(r.items[2], strict(b), r.items[0], strict(a));
    return std::nullopt;
  }
  if (r.ops.size() == 1 && IsOrder(r.ops[0])) {
    RelOp op = r.ops[0];
    const Answer* bound = nullptr;
    if (IsSimpleLhs(r.items[0])) {
      bound = &r.items[1];
    } else if (IsSimpleLhs(r.items[1])) {
      bound = &r.items[0];
      op = Flip(op);
    } else {
      return std::nullopt;
    }
    if (op == RelOp::kLt || op == RelOp::kLe) return make(Infinity(true), true, *bound, strict(op));
    return make(*bound, strict(op), Infinity(false), true);
  }
  return std::nullopt;
}

bool MatchSeq(const Answer& g, const Answer& p, const CompareOptions& o, int depth) {
  bool g_unordered = g.open == 0 || g.open == '{';
  bool p_unordered = p.open == 0 || p.open == '{';
  if (g_unordered && p_unordered) return MatchUnordered(g.items, p.items, o, depth);
  if (!g_unordered && !p_unordered) {
    return g.open == p.open && g.close == p.close && MatchOrdered(g.items, p.items, o, depth);
  }
  // A tuple against a set or a bare list: same elements in the written order.
  return MatchOrdered(g.items, p.items, o, depth);
}

bool Match(const Answer& g, const Answer& p, const CompareOptions& o, int depth) {
  if (depth > kMaxAnswerDepth) return false;
  if (g.raw == p.raw && g.percent == p.percent && !g.raw.empty()) return true;
  if (g.kind == AnswerKind::kRel && p.kind != AnswerKind::kRel) {
    Answer t = TruncateEqChain(g);
    if (t.ops.size() == 1 && (IsEqLike(t.ops[0]) || t.ops[0] == RelOp::kIn)) {
      if (g.items.size() > 2 || IsSimpleLhs(t.items[0])) return Match(t.items[1], p, o, depth + 1);
      return false;
    }
    if (p.kind == AnswerKind::kSeq || p.kind == AnswerKind::kUnion) {
      auto iv = RelAsInterval(g);
      return iv && Match(*iv, p, o, depth + 1);
    }
    return false;
  }
  if (p.kind == AnswerKind::kRel && g.kind != AnswerKind::kRel) {
    Answer t = TruncateEqChain(p);
    if (t.ops.size() == 1 && (IsEqLike(t.ops[0]) || t.ops[0] == RelOp::kIn)) {
      return Match(g, t.items[1], o, depth + 1);
    }
    return false;
  }
  if (g.kind == AnswerKind::kRel && p.kind == AnswerKind::kRel && p.ops.size() == 1 &&
      p.ops[0] == RelOp::kIn && std::none_of(g.ops.begin(), g.ops.end(), [](RelOp op) {
        return op == RelOp::kIn || IsEqLike(op);
      })) {
    // A gold inequality against "x \\in S": compare the interval it describes (gold side only, as
    // Math-Verify).
    auto iv = RelAsInterval(g);
    return iv && Match(*iv, p.items[1], o, depth + 1);
  }
  if (g.kind == AnswerKind::kRel) return MatchRel(g, p, o, depth);
  bool p_garbled = p.kind == AnswerKind::kText ||
                   (p.kind == AnswerKind::kSeq && p.open == 0 &&
                    std::any_of(p.items.begin(), p.items.end(),
                                [](const Answer& x) { return x.kind == AnswerKind::kText; }));
  if (p_garbled && g.kind == AnswerKind::kExpr && g.expr->vars.empty() && !p.source.empty() &&
      p.source.find("\\(") == std::string::npos && p.source.find("\\[") == std::string::npos) {
    // A prediction that is not math at all ("Soucis : 2,74 a"): its last free-standing number, as
    // Math-Verify's expression extraction would read it. Numbers glued to a preceding letter do not
    // count.
    std::optional<std::string> n = LastNumber(p.source, /*free_standing=*/true);
    if (n) {
      Answer d = ParseAnswerRec(*n, depth + 1);
      if (d.kind == AnswerKind::kExpr) return ScalarEqual(g, d, o);
    }
    return false;
  }
  if (g.kind == AnswerKind::kText || p.kind == AnswerKind::kText) {
    std::string a = g.kind == AnswerKind::kText ? g.text : TextKey(g.raw);
    std::string b = p.kind == AnswerKind::kText ? p.text : TextKey(p.raw);
    // Only word-like answers compare as text; "13" in \text{} is not the number 13.
    bool wordy = g.kind == AnswerKind::kText ? std::any_of(a.begin(), a.end(), ::isalpha) : true;
    if (g.kind == AnswerKind::kText && p.kind == AnswerKind::kText) return !a.empty() && a == b;
    if (!wordy) return false;
    const Answer& other = g.kind == AnswerKind::kText ? p : g;
    bool letters_only = std::all_of(other.raw.begin(), other.raw.end(),
                                    [](char c) { return IsAlpha(c) || c == '(' || c == ')'; });
    return letters_only && !a.empty() && a == b;
  }
  if (g.kind == AnswerKind::kUnion && p.kind == AnswerKind::kUnion)
    return MatchUnordered(g.items, p.items, o, depth);
  if (g.kind == AnswerKind::kSeq && p.kind == AnswerKind::kSeq) return MatchSeq(g, p, o, depth);
  if (g.kind == AnswerKind::kMatrix && p.kind == AnswerKind::kMatrix) {
    return g.rows == p.rows && g.cols == p.cols && MatchOrdered(g.items, p.items, o, depth);
  }
  if (g.kind == AnswerKind::kMatrix && p.kind == AnswerKind::kSeq && p.open == '(' &&
      (g.rows == 1 || g.cols == 1)) {
    return MatchOrdered(g.items, p.items, o, depth);
  }
  if (p.kind == AnswerKind::kMatrix && g.kind == AnswerKind::kSeq && g.open == '(' &&
      (p.rows == 1 || p.cols == 1)) {
    return MatchOrdered(g.items, p.items, o, depth);
  }
  if (g.kind == AnswerKind::kExpr && p.kind == AnswerKind::kExpr) return ScalarEqual(g, p, o);
  if (g.kind == AnswerKind::kExpr && p.kind == AnswerKind::kSeq) {
    if (g.expr->pm_count > 0 && (p.open == '{' || p.open == 0))
      return MatchPmSet(g, p.items, true, o);
    if (p.open == '{' && p.items.size() == 1) return Match(g, p.items[0], o, depth + 1);
    // 1000,99 as a decimal comma.
    if (p.open == 0 && !p.spaced && p.items.size() == 2 && AllDigits(p.items[0].raw) &&
        AllDigits(p.items[1].raw)) {
      Answer d = ParseScalar(p.items[0].raw + "." + p.items[1].raw);
      return d.kind == AnswerKind::kExpr && ScalarEqual(g, d, o);
    }
    return false;
  }
  if (p.kind == AnswerKind::kExpr && g.kind == AnswerKind::kSeq) {
    if (p.expr->pm_count > 0 && (g.open == '{' || g.open == 0))
      return MatchPmSet(p, g.items, false, o);
    if (g.open == '{' && g.items.size() == 1) return Match(g.items[0], p, o, depth + 1);
    if (g.open == 0 && !g.spaced && g.items.size() == 2 && AllDigits(g.items[0].raw) &&
        AllDigits(g.items[1].raw)) {
      Answer d = ParseScalar(g.items[0].raw + "." + g.items[1].raw);
      return d.kind == AnswerKind::kExpr && ScalarEqual(d, p, o);
    }
    return false;
  }
  return false;
}

}  // namespace

std::string NormalizeAnswer(std::string_view raw_in) {
  std::string_view raw = raw_in;
  if (raw.size() > kMaxRawChars) raw = raw.substr(raw.size() - kMaxRawChars);
  std::string s;
  if (auto boxed = ExtractBoxed(raw)) {
    s = *boxed;
  } else if (auto anchored = AfterAnswerAnchor(raw)) {
    if (auto env = ExtractMathEnv(*anchored)) {
      s = *env;
    } else if (IsProse(*anchored)) {
      s = LastNumber(*anchored).value_or(*anchored);
    } else {
      s = *anchored;
    }
  } else if (auto env = ExtractMathEnv(raw)) {
    s = *env;
  } else if (IsProse(raw)) {
    s = LastNumber(raw).value_or(std::string(raw));
  } else {
    s = std::string(raw);
  }
  // Thin and non-breaking spaces between digit groups are thousands separators; elsewhere plain
  // spaces.
  for (const char* sp : {"\xe2\x80\x89", "\xe2\x80\xaf", "\xc2\xa0"}) {
    size_t pos = 0;
    while ((pos = s.find(sp, pos)) != std::string::npos) {
      size_t n = strlen(sp);
      bool digits = pos > 0 && IsDigitC(s[pos - 1]) && pos + n < s.size() && IsDigitC(s[pos + n]);
      // The (count, char) form: the pointer form trips GCC 12's -Wrestrict false positive.
      s.replace(pos, n, digits ? 0 : 1, ' ');
    }
  }
  struct Rep {
    const char* from;
    const char* to;
  };
  static const Rep kUnicode[] = {
      {"\xe2\x88\x92", "-"},      {"\xc3\x97", "\\times "},   {"\xc2\xb7", "\\cdot "},
      {"\xcf\x80", "\\pi "},      {"\xe2\x88\x9a", "\\sqrt"}, {"\xe2\x88\x9e", "\\infty "},
      {"\xe2\x89\xa4", "\\le "},  {"\xe2\x89\xa5", "\\ge "},  {"\xe2\x89\xa0", "\\ne "},
      {"\xc2\xb0", "^\\circ"},    {"\xc2\xb2", "^2"},         {"\xc2\xb3", "^3"},
      {"\xe2\x82\xac", ""},       {"\xc2\xa3", ""},           {"\xc2\xb1", "\\pm "},
      {"\xe2\x88\xaa", "\\cup "},
  };
  for (const Rep& r : kUnicode) ReplaceAll(&s, r.from, r.to);
  bool matrix = s.find("matrix") != std::string::npos || s.find("array") != std::string::npos;
  if (s.find("\\\\\\\\") != std::string::npos || (!matrix && s.find("\\\\") != std::string::npos)) {
    // Doubly escaped source (\\frac, \\\\ row breaks) from JSON or Python: halve every backslash
    // run.
    std::string t;
    for (size_t k = 0; k < s.size(); ++k) {
      t += s[k];
      if (s[k] == '\\' && k + 1 < s.size() && s[k + 1] == '\\') ++k;
    }
    s = t;
  }
  // ,\! and \, between digit groups: 10,\!080 and 1\,000.
  for (const char* sep : {",\\!", "\\,", "\\ ", "{,}", "{, }"}) {
    size_t pos = 0, n = strlen(sep);
    while ((pos = s.find(sep, pos)) != std::string::npos) {
      size_t after = pos + n;
      while (after < s.size() && s[after] == ' ') ++after;
      while (pos > 0 && s[pos - 1] == ' ' && pos >= 2 && IsDigitC(s[pos - 2])) --pos;
      if (pos > 0 && IsDigitC(s[pos - 1]) && after + 2 < s.size() && IsDigitC(s[after]) &&
          IsDigitC(s[after + 1]) && IsDigitC(s[after + 2]) &&
          (after + 3 == s.size() || !IsDigitC(s[after + 3]))) {
        s.replace(pos, after - pos, "");
      } else {
        pos += n;
      }
    }
  }
  for (const char* cmd : {"left", "right", "mleft", "mright", "bigl", "bigr", "Bigl", "Bigr", "big",
                          "Big", "displaystyle", "limits", "quad", "qquad", "hfill", "textstyle"}) {
    ReplaceCmd(&s, cmd, "");
  }
  ReplaceAll(&s, "\\!", "");
  ReplaceAll(&s, "\\,", " ");
  ReplaceAll(&s, "\\;", " ");
  ReplaceAll(&s, "\\:", " ");
  ReplaceAll(&s, "\\ ", " ");
  ReplaceAll(&s, "~", " ");
  ReplaceAll(&s, "\n", " ");
  ReplaceAll(&s, "\t", " ");
  ReplaceAll(&s, "\r", " ");
  for (const char* f : {"dfrac", "tfrac", "cfrac"}) ReplaceCmd(&s, f, "\\frac");
  RewriteRepeatingDecimals(&s);
  for (const char* f : {"dbinom", "tbinom"}) ReplaceCmd(&s, f, "\\binom");
  for (const char* t : {"textnormal", "textbf", "textit", "textrm", "mathrm", "mathit", "mbox",
                        "textsf", "mathsf", "texttt", "operatorname"}) {
    ReplaceCmd(&s, t, "\\text");
  }
  // \text{e}, \text{i}, \text{d} were \mathrm constants; \text{sin} was \operatorname{sin}.
  for (const char* c : {"e", "i", "d"}) ReplaceAll(&s, std::string("\\text{") + c + "}", c);
  for (const char* f : {"sin", "cos", "tan", "cot", "sec", "csc", "log", "ln", "exp", "arcsin",
                        "arccos", "arctan"}) {
    ReplaceAll(&s, std::string("\\text{") + f + "}", std::string("\\") + f + " ");
  }
  ReplaceCmd(&s, "lt", "<");
  ReplaceCmd(&s, "gt", ">");
  for (const char* c : {"leqslant", "leq"}) ReplaceCmd(&s, c, "\\le ");
  for (const char* c : {"geqslant", "geq"}) ReplaceCmd(&s, c, "\\ge ");
  ReplaceCmd(&s, "neq", "\\ne ");
  ReplaceAll(&s, "\\not=", "\\ne ");
  ReplaceCmd(&s, "varnothing", "\\{\\}");
  ReplaceCmd(&s, "emptyset", "\\{\\}");
  for (const char* d : {"^{\\circ}", "^\\circ", "\\circ", "\\degree"}) ReplaceAll(&s, d, "");
  ReplaceAll(&s, "\\$", "");
  ReplaceAll(&s, "$", "");
  ReplaceAll(&s, "\\%", "%");
  for (const char* a : {"\\text{ and }", "\\text{and}", "\\text{ and}", "\\text{and }",
                        "\\text{ or }", "\\text{or}", "\\text{, and }", "\\text{,}"}) {
    ReplaceAll(&s, a, ",");
  }
  ReplaceAll(&s, " and ", ",");
  ReplaceAll(&s, " or ", ",");
  {
    // Empty list items left by "19, 46, and 82".
    std::string t;
    for (char c : s) {
      if (c == ',') {
        size_t k = t.size();
        while (k > 0 && t[k - 1] == ' ') --k;
        if (k > 0 && t[k - 1] == ',') {
          t.resize(k);
          continue;
        }
      }
      t += c;
    }
    s = t;
  }
  ReplaceAll(&s, "{,}", ",");
  s = Trim(s);
  // Sentence punctuation after the answer (not an ellipsis).
  while (!s.empty() && (s.back() == '.' || s.back() == ',' || s.back() == ';' || s.back() == ':') &&
         !(s.size() >= 3 && s.compare(s.size() - 3, 3, "...") == 0)) {
    s.pop_back();
    s = Trim(s);
  }
  while (!s.empty() && s[0] == ':') s = Trim(std::string_view(s).substr(1));
  // Percent spelled out.
  for (const char* w : {"\\text{percent}", "\\text{ percent}", "\\text{percentage}",
                        "\\text{ percentage}", "percentage", "percent", "pct"}) {
    size_t n = strlen(w);
    if (s.size() > n && s.compare(s.size() - n, n, w) == 0) {
      s = Trim(s.substr(0, s.size() - n)) + "%";
      break;
    }
  }
  for (int pass = 0; pass < 2; ++pass) {
    std::string t = s;
    bool pct = !t.empty() && t.back() == '%';
    if (pct) t = Trim(t.substr(0, t.size() - 1));
    if (StripTrailingUnit(&t)) s = t + (pct ? "%" : "");
  }
  // infinity spelled out.
  ReplaceAll(&s, "infinity", "\\infty");
  if (s == "inf" || s == "-inf") s = s == "inf" ? "\\infty" : "-\\infty";
  return Trim(s);
}

std::optional<std::string> LastNumberInText(std::string_view text) {
  return LastNumber(text, true);
}

Answer ParseAnswer(std::string_view normalized) {
  Answer a = ParseAnswerRec(normalized, 0);
  a.source = std::string(normalized);
  return a;
}

bool RelationsEqualUpToSign(const Answer& a, const Answer& b) {
  if (a.kind != AnswerKind::kRel || b.kind != AnswerKind::kRel || a.items.size() != 2 ||
      b.items.size() != 2) {
    return false;
  }
  std::vector<Complex> f, h;
  if (!Differences(a.items[0], a.items[1], &f) || !Differences(b.items[0], b.items[1], &h))
    return false;
  for (size_t k = 0; k < f.size(); ++k) {
    if (!Close(f[k], h[k], 1e-8) && !Close(f[k], -h[k], 1e-8)) return false;
  }
  return true;
}

bool AnswersMatch(const Answer& gold, const Answer& pred, const CompareOptions& options) {
  try {
    return Match(gold, pred, options, 0);
  } catch (const std::exception&) {
    return false;
  }
}

}  // namespace ttc::experiments::latex
