// SAL / Qwen strip_string + math_equal without sympy. See sal_math.h; the step numbers follow
// evaluation.md §4.3.
#include "experiments/sal_math.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <vector>

#include "experiments/latex/answer.h"

namespace ttc::experiments {

namespace {

bool IsWordByte(unsigned char c) { return std::isalnum(c) || c == '_' || c >= 0x80; }

void ReplaceAll(std::string* s, std::string_view from, std::string_view to) {
  size_t pos = 0;
  while ((pos = s->find(from, pos)) != std::string::npos) {
    s->replace(pos, from.size(), to);
    pos += to.size();
  }
}

std::string PyStrip(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return std::string(s.substr(b, e - b));
}

// SAL's unit_texts (qwen_math_parser.py); each is used as a regex, so '.' matches any character.
const std::vector<std::string>& UnitTexts() {
  static const auto* units = [] {
    auto* v = new std::vector<std::string>{"east",
                                           "degree",
                                           "mph",
                                           "kmph",
                                           "ft",
                                           "m sqaure",
                                           " m east",
                                           "sq m",
                                           "deg",
                                           "mile",
                                           "q .",
                                           "monkey",
                                           "prime",
                                           "ratio",
                                           "profit of rs",
                                           "rd",
                                           "o",
                                           "gm",
                                           "p . m",
                                           "lb",
                                           "tile",
                                           "per",
                                           "dm",
                                           "lt",
                                           "gain",
                                           "ab",
                                           "way",
                                           "west",
                                           "a .",
                                           "b .",
                                           "c .",
                                           "d .",
                                           "e .",
                                           "f .",
                                           "g .",
                                           "h .",
                                           "t",
                                           "a",
                                           "h",
                                           "no change",
                                           "men",
                                           "soldier",
                                           "pie",
                                           "bc",
                                           "excess",
                                           "st",
                                           "inches",
                                           "noon",
                                           "percent",
                                           "by",
                                           "gal",
                                           "kmh",
                                           "c",
                                           "acre",
                                           "rise",
                                           "a . m",
                                           "th",
                                           "\xcf\x80 r 2",
                                           "sq",
                                           "mark",
                                           "l",
                                           "toy",
                                           "coin",
                                           "sq . m",
                                           "gallon",
                                           "\xc2\xb0 f",
                                           "profit",
                                           "minw",
                                           "yr",
                                           "women",
                                           "feet",
                                           "am",
                                           "pm",
                                           "hr",
                                           "cu cm",
                                           "square",
                                           "v \xc3\xa2 \xe2\x82\xac \xe2\x84\xa2",
                                           "are",
                                           "rupee",
                                           "rounds",
                                           "cubic",
                                           "cc",
                                           "mtr",
                                           "s",
                                           "ohm",
                                           "number",
                                           "kmph",
                                           "day",
                                           "hour",
                                           "minute",
                                           "min",
                                           "second",
                                           "man",
                                           "woman",
                                           "sec",
                                           "cube",
                                           "mt",
                                           "sq inch",
                                           "mp",
                                           "\xe2\x88\x8f cm \xc2\xb3",
                                           "hectare",
                                           "more",
                                           "sec",
                                           "unit",
                                           "cu . m",
                                           "cm 2",
                                           "rs .",
                                           "rs",
                                           "kg",
                                           "g",
                                           "month",
                                           "km",
                                           "m",
                                           "cm",
                                           "mm",
                                           "apple",
                                           "liter",
                                           "loss",
                                           "yard",
                                           "pure",
                                           "year",
                                           "increase",
                                           "decrease",
                                           "d",
                                           "less",
                                           "Surface",
                                           "litre",
                                           "pi sq m",
                                           "s .",
                                           "metre",
                                           "meter",
                                           "inch"};
    size_t n = v->size();
    for (size_t i = 0; i < n; ++i) v->push_back((*v)[i] + "s");
    return v;
  }();
  return *units;
}

bool UnitAt(const std::string& s, size_t pos, const std::string& u) {
  if (pos + u.size() > s.size()) return false;
  for (size_t k = 0; k < u.size(); ++k) {
    if (u[k] != '.' && s[pos + k] != u[k]) return false;
  }
  return true;
}

// re.sub(r"(^|\W)" + unit + r"($|\W)", r"\1\2", s), scanning left to right like Python's re.
std::optional<std::string> RemoveUnit(const std::string& s, const std::string& u) {
  // Cheap rejection: the literal text before the first wildcard must occur.
  size_t wild = u.find('.');
  if (s.find(std::string_view(u).substr(0, wild == std::string::npos ? u.size() : wild)) ==
      std::string::npos) {
    return std::nullopt;
  }
  std::string out;
  size_t p = 0, copied = 0;
  while (p <= s.size()) {
    // Alternative 1: ^ at p == 0. Alternative 2: one \W character at p.
    for (int alt = 0; alt < 2; ++alt) {
      size_t ustart;
      if (alt == 0) {
        if (p != 0) continue;
        ustart = 0;
      } else {
        if (p >= s.size() || IsWordByte(static_cast<unsigned char>(s[p]))) continue;
        ustart = p + 1;
      }
      if (!UnitAt(s, ustart, u)) continue;
      size_t uend = ustart + u.size();
      size_t mend;
      if (uend == s.size()) {
        mend = uend;
      } else if (!IsWordByte(static_cast<unsigned char>(s[uend]))) {
        mend = uend + 1;
      } else {
        continue;
      }
      out.append(s, copied, ustart - copied);  // keeps group 1
      out.append(s, uend, mend - uend);        // keeps group 2
      copied = mend;
      p = mend == p ? p + 1 : mend;
      goto next;
    }
    ++p;
  next:;
  }
  if (copied == 0) return std::nullopt;
  out.append(s, std::min(copied, s.size()), std::string::npos);
  return out;
}

// word2number's word_to_num, reduced to what answers use: digit strings lose leading zeros, simple
// number words become digits; anything else is left alone (the Python raises and strip_string keeps
// the text).
std::string ConvertWordNumber(const std::string& s) {
  if (!s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    size_t nz = s.find_first_not_of('0');
    return nz == std::string::npos ? "0" : s.substr(nz);
  }
  static const std::pair<const char*, long long> kWords[] = {
      {"zero", 0},      {"one", 1},         {"two", 2},           {"three", 3},
      {"four", 4},      {"five", 5},        {"six", 6},           {"seven", 7},
      {"eight", 8},     {"nine", 9},        {"ten", 10},          {"eleven", 11},
      {"twelve", 12},   {"thirteen", 13},   {"fourteen", 14},     {"fifteen", 15},
      {"sixteen", 16},  {"seventeen", 17},  {"eighteen", 18},     {"nineteen", 19},
      {"twenty", 20},   {"thirty", 30},     {"forty", 40},        {"fifty", 50},
      {"sixty", 60},    {"seventy", 70},    {"eighty", 80},       {"ninety", 90},
      {"hundred", 100}, {"thousand", 1000}, {"million", 1000000}, {"billion", 1000000000}};
  std::string lower;
  for (char c : s)
    lower += c == '-' ? ' ' : static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  std::vector<std::string> words;
  size_t p = 0;
  while (p < lower.size()) {
    size_t q = lower.find(' ', p);
    if (q == std::string::npos) q = lower.size();
    if (q > p) words.push_back(lower.substr(p, q - p));
    p = q + 1;
  }
  long long total = 0, current = 0;
  bool any = false;
  for (const std::string& w : words) {
    for (const auto& [name, value] : kWords) {
      if (w != name) continue;
      any = true;
      if (value == 100) {
        current = (current == 0 ? 1 : current) * 100;
      } else if (value >= 1000) {
        total += (current == 0 ? 1 : current) * value;
        current = 0;
      } else {
        current += value;
      }
    }
  }
  if (!any) return s;
  return std::to_string(total + current);
}

// re.sub(r"\\text\{(.*?)\}", r"\1", s) and the \mbox variant (which drops the content).
std::string UnwrapCommand(const std::string& s, std::string_view prefix, bool keep_content) {
  std::string out;
  size_t p = 0;
  while (true) {
    size_t at = s.find(prefix, p);
    if (at == std::string::npos) break;
    size_t close = s.find('}', at + prefix.size());
    if (close == std::string::npos) break;
    out.append(s, p, at - p);
    if (keep_content) out.append(s, at + prefix.size(), close - at - prefix.size());
    p = close + 1;
  }
  out.append(s, p, std::string::npos);
  return out;
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// (\d+)\.0*([^\d]) -> \1\2 and then (\d+)\.0*$ -> \1.
std::string DropTrailingZeroDecimals(const std::string& s) {
  std::string out;
  size_t i = 0;
  while (i < s.size()) {
    if (IsDigit(s[i])) {
      size_t b = i;
      while (b < s.size() && IsDigit(s[b])) ++b;
      if (b < s.size() && s[b] == '.') {
        size_t c = b + 1;
        while (c < s.size() && s[c] == '0') ++c;
        if (c < s.size() && !IsDigit(s[c])) {
          out.append(s, i, b - i);
          out += s[c];
          i = c + 1;
          continue;
        }
      }
      out.append(s, i, b - i);
      i = b;
      continue;
    }
    out += s[i++];
  }
  // Anchored at the end.
  size_t e = out.size();
  size_t z = e;
  while (z > 0 && out[z - 1] == '0') --z;
  if (z > 0 && out[z - 1] == '.' && z >= 2 && IsDigit(out[z - 2])) out.erase(z - 1);
  return out;
}

std::string FixSqrt(const std::string& s) {
  std::string out;
  size_t p = 0;
  while (true) {
    size_t at = s.find("\\sqrt", p);
    if (at == std::string::npos) break;
    size_t w = at + 5;
    size_t e = w;
    while (e < s.size() && IsWordByte(static_cast<unsigned char>(s[e]))) ++e;
    out.append(s, p, w - p);
    if (e > w) {
      out += "{" + s.substr(w, e - w) + "}";
    }
    p = e;
  }
  out.append(s, p, std::string::npos);
  return out;
}

std::string FixFracs(const std::string& string) {
  std::vector<std::string> substrs;
  size_t p = 0;
  while (true) {
    size_t at = string.find("\\frac", p);
    substrs.push_back(string.substr(p, at == std::string::npos ? std::string::npos : at - p));
    if (at == std::string::npos) break;
    p = at + 5;
  }
  std::string new_str = substrs[0];
  for (size_t k = 1; k < substrs.size(); ++k) {
    const std::string& substr = substrs[k];
    new_str += "\\frac";
    if (!substr.empty() && substr[0] == '{') {
      new_str += substr;
    } else {
      if (substr.size() < 2) return string;
      char a = substr[0], b = substr[1];
      if (b != '{') {
        new_str += std::string("{") + a + "}{" + b + "}" + substr.substr(2);
      } else {
        new_str += std::string("{") + a + "}" + b + substr.substr(2);
      }
    }
  }
  return new_str;
}

// Python int() on a string: optional sign and digits (spaces are gone by now).
std::optional<long long> PyInt(const std::string& s) {
  if (s.empty() || s.size() > 18) return std::nullopt;
  size_t i = (s[0] == '-' || s[0] == '+') ? 1 : 0;
  if (i == s.size()) return std::nullopt;
  for (size_t k = i; k < s.size(); ++k) {
    if (!IsDigit(s[k])) return std::nullopt;
  }
  return std::stoll(s);
}

std::string FixASlashB(const std::string& s) {
  size_t slash = s.find('/');
  if (slash == std::string::npos || s.find('/', slash + 1) != std::string::npos) return s;
  std::string a = s.substr(0, slash), b = s.substr(slash + 1);
  std::string as = a, bs = b;
  if (a.find("sqrt") == std::string::npos) {
    auto v = PyInt(a);
    if (!v) return s;
    as = std::to_string(*v);
  }
  if (b.find("sqrt") == std::string::npos) {
    auto v = PyInt(b);
    if (!v) return s;
    bs = std::to_string(*v);
  }
  if (s != as + "/" + bs) return s;
  return "\\frac{" + as + "}{" + bs + "}";
}

std::optional<double> PyFloat(std::string s) {
  s = PyStrip(s);
  if (s.empty() || s.size() > 64) return std::nullopt;
  for (char c : s) {
    if (!(IsDigit(c) || c == '.' || c == '-' || c == '+' || c == 'e' || c == 'E' || c == '_' ||
          std::isalpha(static_cast<unsigned char>(c)))) {
      return std::nullopt;
    }
  }
  std::string lower;
  for (char c : s) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  std::string body = lower[0] == '-' || lower[0] == '+' ? lower.substr(1) : lower;
  if (body == "inf" || body == "infinity" || body == "nan") {
    double v = body == "nan" ? std::nan("") : HUGE_VAL;
    return lower[0] == '-' ? -v : v;
  }
  for (char c : body) {
    if (std::isalpha(static_cast<unsigned char>(c)) && c != 'e') return std::nullopt;
  }
  ReplaceAll(&s, "_", "");
  char* end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  if (end == s.c_str() || *end != '\0') return std::nullopt;
  return v;
}

std::optional<double> ParseDigits(std::string_view in) {
  std::string num(in);
  ReplaceAll(&num, ",", "");
  if (auto v = PyFloat(num)) return v;
  if (!num.empty() && num.back() == '%') {
    num.pop_back();
    if (!num.empty() && num.back() == '\\') num.pop_back();
    if (auto v = PyFloat(num)) return *v / 100;
  }
  return std::nullopt;
}

bool IsClose(double a, double b) {
  if (a == b) return true;
  if (std::isinf(a) || std::isinf(b)) return false;
  return std::abs(a - b) <= 1e-4 * std::max(std::abs(a), std::abs(b));
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// choice_answer_clean for a prediction without "answer is": the last standalone A-E.
std::string ChoiceAnswerClean(std::string_view pred_in) {
  std::string pred = PyStrip(pred_in);
  while (!pred.empty() && (pred.back() == '.' || pred.back() == '/')) pred.pop_back();
  std::string up;
  for (char c : pred) up += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  std::string last;
  for (size_t i = 0; i < up.size(); ++i) {
    if (up[i] >= 'A' && up[i] <= 'E' &&
        (i == 0 || !IsWordByte(static_cast<unsigned char>(up[i - 1]))) &&
        (i + 1 == up.size() || !IsWordByte(static_cast<unsigned char>(up[i + 1])))) {
      last = std::string(1, up[i]);
    }
  }
  return last.empty() ? pred : last;
}

std::vector<std::string> PySplit(const std::string& s, std::string_view sep) {
  std::vector<std::string> out;
  size_t p = 0;
  while (true) {
    size_t q = s.find(sep, p);
    out.push_back(s.substr(p, q == std::string::npos ? std::string::npos : q - p));
    if (q == std::string::npos) break;
    p = q + sep.size();
  }
  return out;
}

std::string StripChars(const std::string& s, std::string_view chars) {
  size_t b = 0, e = s.size();
  while (b < e && chars.find(s[b]) != std::string_view::npos) ++b;
  while (e > b && chars.find(s[e - 1]) != std::string_view::npos) --e;
  return s.substr(b, e - b);
}

// sympy-free symbolic_equal: both sides parsed by the LaTeX evaluator; numbers within rel_tol 1e-4
// (N(a) vs N(b)); expressions identical at random points; relations equal when |lhs - rhs| agree
// (sympy's abs test).
bool SymbolicEqual(const std::string& a_in, const std::string& b_in) {
  using namespace latex;
  std::string a = a_in, b = b_in;
  if (a.find("matrix") == std::string::npos) ReplaceAll(&a, "\\\\", "\\");
  if (b.find("matrix") == std::string::npos) ReplaceAll(&b, "\\\\", "\\");
  if (a == b) return true;
  // Stripped strings lose spaces: "5\\gex" is 5 \\ge x to sympy's latex lexer.
  for (std::string* t : {&a, &b}) {
    for (const char* rel : {"\\ge", "\\le", "\\ne", "\\lt", "\\gt"}) {
      size_t pos = 0;
      while ((pos = t->find(rel, pos)) != std::string::npos) {
        pos += 3;
        if (pos < t->size() && std::isalpha(static_cast<unsigned char>((*t)[pos])) &&
            (*t)[pos] != 'q') {
          t->insert(pos, " ");
        }
      }
    }
  }
  Answer pa = ParseAnswer(a), pb = ParseAnswer(b);
  CompareOptions o;
  o.rel_tol = 1e-4;
  o.sal = true;
  auto scalar = [](const Answer& x) {
    return x.kind == AnswerKind::kExpr && x.expr->pm_count == 0;
  };
  if (scalar(pa) && scalar(pb)) return AnswersMatch(pa, pb, o);
  if (pa.kind == AnswerKind::kRel && pb.kind == AnswerKind::kRel && pa.ops.size() == 1 &&
      pb.ops.size() == 1 && pa.ops[0] != RelOp::kIn && pb.ops[0] != RelOp::kIn) {
    if (!std::all_of(pa.items.begin(), pa.items.end(), scalar) ||
        !std::all_of(pb.items.begin(), pb.items.end(), scalar)) {
      return false;
    }
    return RelationsEqualUpToSign(pa, pb);
  }
  if (pa.kind == AnswerKind::kMatrix && pb.kind == AnswerKind::kMatrix)
    return AnswersMatch(pa, pb, o);
  return false;
}

}  // namespace

std::string SalStripAnswer(std::string_view in, bool skip_unit) {
  std::string s = PyStrip(in);
  ReplaceAll(&s, "\n", "");
  while (!s.empty() && s.back() == '.') s.pop_back();
  ReplaceAll(&s, "\\!", "");
  // \begin{array}{...} -> \begin{pmatrix}
  {
    size_t at;
    size_t from = 0;
    while ((at = s.find("\\begin{array}{", from)) != std::string::npos) {
      size_t close = s.find('}', at + 14);
      if (close == std::string::npos) break;
      s.replace(at, close - at + 1, "\\begin{pmatrix}");
      from = at + 15;
    }
  }
  ReplaceAll(&s, "\\end{array}", "\\end{pmatrix}");
  ReplaceAll(&s, "bmatrix", "pmatrix");
  ReplaceAll(&s, "tfrac", "frac");
  ReplaceAll(&s, "dfrac", "frac");
  ReplaceAll(&s, "\\neq", "\\ne");
  ReplaceAll(&s, "\\leq", "\\le");
  ReplaceAll(&s, "\\geq", "\\ge");
  ReplaceAll(&s, "\\left", "");
  ReplaceAll(&s, "\\right", "");
  ReplaceAll(&s, "\\{", "{");
  ReplaceAll(&s, "\\}", "}");
  {
    size_t at = s.find("\\text{");
    if (at != std::string::npos && !s.empty() && s.back() == '}') {
      std::string t = PyStrip(s.substr(0, at));
      if (!t.empty() && t != s) s = t;
    }
  }
  if (!skip_unit) {
    for (int pass = 0; pass < 2; ++pass) {
      for (const std::string& u : UnitTexts()) {
        std::optional<std::string> t = RemoveUnit(s, u);
        if (t && !t->empty()) s = std::move(*t);
      }
    }
  }
  ReplaceAll(&s, "^{\\circ}", "");
  ReplaceAll(&s, "^\\circ", "");
  ReplaceAll(&s, "\\$", "");
  ReplaceAll(&s, "$", "");
  ReplaceAll(&s, "\\(", "");
  ReplaceAll(&s, "\\)", "");
  s = ConvertWordNumber(s);
  s = UnwrapCommand(s, "\\text{", true);
  for (const char* key : {"x=", "y=", "z=", "x\\in", "y\\in", "z\\in", "x\\to", "y\\to", "z\\to"}) {
    ReplaceAll(&s, key, "");
  }
  ReplaceAll(&s, "\\emptyset", "{}");
  ReplaceAll(&s, "(-\\infty,\\infty)", "\\mathbb{R}");
  ReplaceAll(&s, "\\%", "");
  ReplaceAll(&s, "%", "");
  ReplaceAll(&s, " .", " 0.");
  ReplaceAll(&s, "{.", "{0.");
  ReplaceAll(&s, "infinity", "\\infty");
  if (s.find("\\infty") == std::string::npos) ReplaceAll(&s, "inf", "\\infty");
  ReplaceAll(&s, "+\\inity", "\\infty");
  ReplaceAll(&s, "and", "");
  ReplaceAll(&s, "\\mathbf", "");
  s = UnwrapCommand(s, "\\mbox{", false);
  if (s.find('j') != std::string::npos && s.find('i') == std::string::npos) {
    std::replace(s.begin(), s.end(), 'j', 'i');
  }
  s = DropTrailingZeroDecimals(s);
  if (s.empty()) return s;
  if (s[0] == '.') s = "0" + s;
  {
    std::vector<std::string> parts = PySplit(s, "=");
    if (parts.size() == 2 && parts[0].size() <= 2) s = parts[1];
  }
  s = FixSqrt(s);
  ReplaceAll(&s, " ", "");
  s = FixFracs(s);
  s = FixASlashB(s);
  return s;
}

std::string SalNormalizeAnswer(std::string_view answer) {
  // extract_answer("\\boxed{" + answer + "}", "math"): the text after the last "boxed",
  // brace-matched.
  std::string full = "\\boxed{" + std::string(answer) + "}";
  ReplaceAll(&full, "\xd0\xba\xd0\xb8", "");
  std::string a;
  if (full.find("final answer is $") != std::string::npos &&
      full.find("$. I hope") != std::string::npos) {
    size_t at = full.find("final answer is $") + 17;
    a = PyStrip(full.substr(at, full.find("$. I hope", at) == std::string::npos
                                    ? std::string::npos
                                    : full.find("$. I hope", at) - at));
  } else {
    size_t at = full.rfind("boxed");
    std::string t = full.substr(at + 5);
    if (t.empty()) return "";
    if (t[0] == '{') {
      int stack = 1;
      for (size_t k = 1; k < t.size(); ++k) {
        char c = t[k];
        if (c == '{') ++stack;
        if (c == '}' && --stack == 0) break;
        a += c;
      }
    } else {
      a = PyStrip(t.substr(0, t.find('$')));
    }
  }
  // re.sub(r"\n\s*", "", a)
  std::string b;
  for (size_t k = 0; k < a.size(); ++k) {
    if (a[k] == '\n') {
      while (k + 1 < a.size() && std::isspace(static_cast<unsigned char>(a[k + 1]))) ++k;
      continue;
    }
    b += a[k];
  }
  if (!b.empty() && b[0] == ':') b.erase(0, 1);
  if (!b.empty() && b.back() == '.') b.pop_back();
  if (!b.empty() && b.back() == '/') b.pop_back();
  return SalStripAnswer(b);
}

namespace {
bool MathEqualRec(std::string_view prediction_in, std::string_view reference_in, int depth);
}  // namespace

bool SalMathEqual(std::string_view prediction, std::string_view reference) {
  return MathEqualRec(prediction, reference, 0);
}

namespace {

// math_equal recursing into tuple and matrix elements; nesting beyond 16 levels is "not equal".
bool MathEqualRec(std::string_view prediction_in, std::string_view reference_in, int depth) {
  if (depth > 16) return false;
  std::string prediction(prediction_in), reference(reference_in);
  if (prediction.size() > latex::kMaxExprChars || reference.size() > latex::kMaxExprChars) {
    return Lower(PyStrip(prediction)) == Lower(PyStrip(reference));
  }
  if (Lower(PyStrip(prediction)) == Lower(PyStrip(reference))) return true;
  if (reference.size() == 1 && reference[0] >= 'A' && reference[0] <= 'E' &&
      ChoiceAnswerClean(prediction) == reference) {
    return true;
  }
  auto pd = ParseDigits(prediction), rd = ParseDigits(reference);
  if (pd && rd) {
    for (double item : {*rd / 100, *rd, *rd * 100}) {
      if (IsClose(*pd, item)) return true;
    }
    return false;
  }
  if (prediction.empty()) return false;
  reference = PyStrip(reference);
  prediction = PyStrip(prediction);
  if (prediction.find("pmatrix") != std::string::npos &&
      reference.find("pmatrix") == std::string::npos) {
    // str_to_pmatrix: re.findall(r"\{.*,.*\}") is greedy from the first { to the last }.
    size_t open = reference.find('{'), close = reference.rfind('}');
    std::string converted;
    if (open != std::string::npos && close != std::string::npos && close > open &&
        reference.substr(open, close - open).find(',') != std::string::npos) {
      std::string m = StripChars(reference.substr(open, close - open + 1), "{}");
      ReplaceAll(&m, ",", "\\");
      converted = "\\begin{" + m + "}\\end{pmatrix}";
    }
    reference = converted;
  }
  std::string pred_str = prediction, ref_str = reference;
  auto starts = [](const std::string& s, char c) { return !s.empty() && s.front() == c; };
  auto ends = [](const std::string& s, char c) { return !s.empty() && s.back() == c; };
  if ((starts(prediction, '[') && ends(prediction, ']') && !starts(reference, '(')) ||
      (starts(prediction, '(') && ends(prediction, ')') && !starts(reference, '['))) {
    pred_str = StripChars(pred_str, "[]()");
    ref_str = StripChars(ref_str, "[]()");
  }
  for (const char* c : {"{", "}", "(", ")"}) {
    ReplaceAll(&ref_str, c, "");
    ReplaceAll(&pred_str, c, "");
  }
  if (Lower(pred_str) == Lower(ref_str)) return true;
  // re.match(r"(\(|\[).+(\)|\])", s): starts with ( or [ and has a ) or ] after at least one
  // character.
  auto bracketed = [](const std::string& s) {
    if (s.size() < 3 || (s[0] != '(' && s[0] != '[')) return false;
    size_t last = s.find_last_of(")]");
    return last != std::string::npos && last >= 2;
  };
  if (bracketed(prediction) && bracketed(reference)) {
    std::vector<std::string> pp = PySplit(prediction.substr(1, prediction.size() - 2), ",");
    std::vector<std::string> rp = PySplit(reference.substr(1, reference.size() - 2), ",");
    if (pp.size() == rp.size() && pp.size() <= 64) {
      bool all = true;
      for (size_t k = 0; k < pp.size() && all; ++k) all = MathEqualRec(pp[k], rp[k], depth + 1);
      if (all) return true;
    }
  }
  auto is_matrix = [](const std::string& s) {
    return (s.rfind("\\begin{pmatrix}", 0) == 0 || s.rfind("\\begin{bmatrix}", 0) == 0) &&
           (s.size() >= 13 && (s.compare(s.size() - 13, 13, "\\end{pmatrix}") == 0 ||
                               s.compare(s.size() - 13, 13, "\\end{bmatrix}") == 0));
  };
  if (is_matrix(prediction) && is_matrix(reference) && prediction.size() >= 28 &&
      reference.size() >= 28) {
    auto lines = [](const std::string& m) {
      std::vector<std::string> out;
      for (const std::string& line : PySplit(m.substr(15, m.size() - 28), "\\\\")) {
        std::string t = PyStrip(line);
        if (!t.empty()) out.push_back(t);
      }
      return out;
    };
    std::vector<std::string> pl = lines(prediction), rl = lines(reference);
    bool matched = pl.size() == rl.size();
    for (size_t k = 0; matched && k < pl.size(); ++k) {
      std::vector<std::string> pp = PySplit(pl[k], "&"), rp = PySplit(rl[k], "&");
      matched = pp.size() == rp.size();
      for (size_t j = 0; matched && j < pp.size(); ++j)
        matched = MathEqualRec(pp[j], rp[j], depth + 1);
    }
    if (matched) return true;
  }
  auto count_eq = [](const std::string& s) { return std::count(s.begin(), s.end(), '='); };
  if (count_eq(prediction) == 1 && count_eq(reference) == 1) {
    std::vector<std::string> p = PySplit(prediction, "="), r = PySplit(reference, "=");
    std::string pe = PyStrip(p[0]) + " - (" + PyStrip(p[1]) + ")";
    std::string re = PyStrip(r[0]) + " - (" + PyStrip(r[1]) + ")";
    if (SymbolicEqual(pe, re) || SymbolicEqual("-(" + pe + ")", re)) return true;
  } else if (count_eq(prediction) == 1 && PyStrip(PySplit(prediction, "=")[0]).size() <= 2 &&
             count_eq(reference) == 0) {
    if (MathEqualRec(PySplit(prediction, "=")[1], reference, depth + 1)) return true;
  } else if (count_eq(reference) == 1 && PyStrip(PySplit(reference, "=")[0]).size() <= 2 &&
             count_eq(prediction) == 0) {
    if (MathEqualRec(prediction, PySplit(reference, "=")[1], depth + 1)) return true;
  }
  return SymbolicEqual(prediction, reference);
}

}  // namespace

}  // namespace ttc::experiments
