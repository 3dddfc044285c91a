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

#include "experiments/extract.h"
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

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

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
          t->insert(pos, 1, ' ');
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
  return SalStripString(b);  // the bit-exact strip_string of experiments/extract.h
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
