// Answer extraction (see extract.h). The SAL/Qwen functions are re-implemented from the behaviour
// described in reference/evaluation.md §3.1 and §4.3; Python semantics that matter for
// bit-exactness are kept on purpose: str.strip() strips Unicode whitespace, len() and indexing
// count code points, `re` classes (\d \w \s) are Unicode aware (PCRE2 with UTF+UCP gives the same
// classes), and failed int() conversions leave strings unchanged.
#define PCRE2_CODE_UNIT_WIDTH 8
#include "experiments/extract.h"

#include <fmt/format.h>
#include <pcre2.h>

#include <algorithm>
#include <array>
#include <cassert>
#include <cstdint>
#include <memory>
#include <vector>

namespace ttc::experiments {

namespace {

// ---------------------------------------------------------------------------------------------------------------
// UTF-8 and Python str helpers.

// Decodes one code point at s[i]; returns its length in bytes (1..4), or 0 when the bytes are not
// valid UTF-8.
size_t DecodeUtf8(std::string_view s, size_t i, char32_t* cp) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  if (b0 < 0x80) {
    *cp = b0;
    return 1;
  }
  size_t len;
  char32_t min;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    len = 2;
    *cp = b0 & 0x1F;
    min = 0x80;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    len = 3;
    *cp = b0 & 0x0F;
    min = 0x800;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    len = 4;
    *cp = b0 & 0x07;
    min = 0x10000;
  } else {
    return 0;
  }
  if (i + len > s.size()) return 0;
  for (size_t k = 1; k < len; ++k) {
    const auto b = static_cast<unsigned char>(s[i + k]);
    if ((b & 0xC0) != 0x80) return 0;
    *cp = (*cp << 6) | (b & 0x3F);
  }
  if (*cp < min || *cp > 0x10FFFF || (*cp >= 0xD800 && *cp <= 0xDFFF)) return 0;
  return len;
}

// Python's str.isspace().
bool IsPySpace(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 ||
         c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
         c == 0x205F || c == 0x3000;
}

// Code points of a valid UTF-8 string, with their byte offsets (offsets.back() == s.size()).
struct CodePoints {
  std::vector<char32_t> cps;
  std::vector<size_t> offsets;
};

CodePoints Decode(std::string_view s) {
  CodePoints out;
  size_t i = 0;
  while (i < s.size()) {
    char32_t cp;
    size_t n = DecodeUtf8(s, i, &cp);
    if (n == 0) {  // not reachable for sanitised text; treat the byte as one unit
      cp = 0xFFFD;
      n = 1;
    }
    out.cps.push_back(cp);
    out.offsets.push_back(i);
    i += n;
  }
  out.offsets.push_back(s.size());
  return out;
}

size_t CodePointCount(std::string_view s) { return Decode(s).cps.size(); }

// Python str.strip() with no argument.
std::string PyStrip(std::string_view s) {
  CodePoints d = Decode(s);
  size_t b = 0, e = d.cps.size();
  while (b < e && IsPySpace(d.cps[b])) ++b;
  while (e > b && IsPySpace(d.cps[e - 1])) --e;
  return std::string(s.substr(d.offsets[b], d.offsets[e] - d.offsets[b]));
}

// Python str.split() with no argument.
std::vector<std::string> PySplitWhitespace(std::string_view s) {
  CodePoints d = Decode(s);
  std::vector<std::string> words;
  size_t i = 0;
  while (i < d.cps.size()) {
    while (i < d.cps.size() && IsPySpace(d.cps[i])) ++i;
    size_t start = i;
    while (i < d.cps.size() && !IsPySpace(d.cps[i])) ++i;
    if (i > start) words.emplace_back(s.substr(d.offsets[start], d.offsets[i] - d.offsets[start]));
  }
  return words;
}

// Python str.split(sep) with a non-empty separator.
std::vector<std::string> PySplit(std::string_view s, std::string_view sep) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    size_t pos = s.find(sep, start);
    if (pos == std::string_view::npos) {
      parts.emplace_back(s.substr(start));
      return parts;
    }
    parts.emplace_back(s.substr(start, pos - start));
    start = pos + sep.size();
  }
}

std::string ReplaceAll(std::string_view s, std::string_view from, std::string_view to) {
  std::string out;
  out.reserve(s.size());
  size_t start = 0;
  while (true) {
    size_t pos = s.find(from, start);
    if (pos == std::string_view::npos) break;
    out.append(s.substr(start, pos - start));
    out.append(to);
    start = pos + from.size();
  }
  out.append(s.substr(start));
  return out;
}

bool Contains(std::string_view s, std::string_view what) {
  return s.find(what) != std::string_view::npos;
}

// ---------------------------------------------------------------------------------------------------------------
// A compiled PCRE2 pattern with Python `re` semantics for the constructs used here (UTF + UCP: \d
// \w \s are Unicode classes, `.` excludes only "\n", `$` also matches before a final "\n").
class Regex {
 public:
  explicit Regex(std::string_view pattern) {
    int error = 0;
    PCRE2_SIZE offset = 0;
    code_ = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                          PCRE2_UTF | PCRE2_UCP, &error, &offset, nullptr);
    assert(code_ != nullptr && "bad built-in regex");
    if (code_ != nullptr) pcre2_jit_compile(code_, PCRE2_JIT_COMPLETE);
  }
  ~Regex() { pcre2_code_free(code_); }
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;
  Regex(Regex&& other) noexcept : code_(other.code_) { other.code_ = nullptr; }

  // re.sub(pattern, replacement, subject) where replacement uses $1-style group references. On any
  // PCRE2 error the subject comes back unchanged (only possible for pathological inputs).
  std::string Sub(std::string_view subject, std::string_view replacement) const {
    if (code_ == nullptr) return std::string(subject);
    std::string out(subject.size() + 64, '\0');
    for (int attempt = 0; attempt < 2; ++attempt) {
      PCRE2_SIZE out_len = out.size();
      int rc = pcre2_substitute(
          code_, reinterpret_cast<PCRE2_SPTR>(subject.data()), subject.size(), 0,
          PCRE2_SUBSTITUTE_GLOBAL | PCRE2_SUBSTITUTE_UNSET_EMPTY | PCRE2_SUBSTITUTE_OVERFLOW_LENGTH,
          nullptr, nullptr, reinterpret_cast<PCRE2_SPTR>(replacement.data()), replacement.size(),
          reinterpret_cast<PCRE2_UCHAR*>(out.data()), &out_len);
      if (rc >= 0) {
        out.resize(out_len);
        return out;
      }
      if (rc != PCRE2_ERROR_NOMEMORY) break;
      out.assign(out_len + 1, '\0');
    }
    return std::string(subject);
  }

  // Every non-overlapping match, left to right, as (start, end) byte ranges of group `group`; a
  // group that did not participate gives an empty range at npos.
  std::vector<std::pair<size_t, size_t>> FindAll(std::string_view subject, int group = 0) const {
    std::vector<std::pair<size_t, size_t>> out;
    if (code_ == nullptr) return out;
    std::unique_ptr<pcre2_match_data, decltype(&pcre2_match_data_free)> md(
        pcre2_match_data_create_from_pattern(code_, nullptr), &pcre2_match_data_free);
    size_t offset = 0;
    while (offset <= subject.size()) {
      int rc = pcre2_match(code_, reinterpret_cast<PCRE2_SPTR>(subject.data()), subject.size(),
                           offset, 0, md.get(), nullptr);
      if (rc < 0) break;
      PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md.get());
      size_t ms = ov[0], me = ov[1];
      if (group < rc && ov[2 * group] != PCRE2_UNSET) {
        out.emplace_back(ov[2 * group], ov[2 * group + 1]);
      } else {
        out.emplace_back(std::string_view::npos, std::string_view::npos);
      }
      if (me > ms) {
        offset = me;
      } else {  // empty match: step over one code point
        char32_t cp;
        size_t n = me < subject.size() ? DecodeUtf8(subject, me, &cp) : 1;
        offset = me + (n == 0 ? 1 : n);
      }
    }
    return out;
  }

 private:
  pcre2_code* code_ = nullptr;
};

// ---------------------------------------------------------------------------------------------------------------
// word2number 1.1 `w2n.word_to_num`, as strip_string step 8 uses it: Ok(value text) or nullopt
// where Python raises (strip_string then keeps the string unchanged).

struct NumberWord {
  std::string_view word;
  int64_t value;  // -1 for "point"
};
constexpr std::array<NumberWord, 33> kNumberWords = {{
    {"zero", 0},      {"one", 1},         {"two", 2},           {"three", 3},
    {"four", 4},      {"five", 5},        {"six", 6},           {"seven", 7},
    {"eight", 8},     {"nine", 9},        {"ten", 10},          {"eleven", 11},
    {"twelve", 12},   {"thirteen", 13},   {"fourteen", 14},     {"fifteen", 15},
    {"sixteen", 16},  {"seventeen", 17},  {"eighteen", 18},     {"nineteen", 19},
    {"twenty", 20},   {"thirty", 30},     {"forty", 40},        {"fifty", 50},
    {"sixty", 60},    {"seventy", 70},    {"eighty", 80},       {"ninety", 90},
    {"hundred", 100}, {"thousand", 1000}, {"million", 1000000}, {"billion", 1000000000},
    {"point", -1},
}};

std::optional<int64_t> NumberWordValue(std::string_view w) {
  for (const NumberWord& nw : kNumberWords) {
    if (nw.word == w) return nw.value;
  }
  return std::nullopt;
}

// number_formation(); nullopt where Python raises IndexError (an empty list).
std::optional<int64_t> NumberFormation(const std::vector<std::string>& words, size_t begin,
                                       size_t end) {
  std::vector<int64_t> n;
  for (size_t i = begin; i < end && i < words.size(); ++i) n.push_back(*NumberWordValue(words[i]));
  if (n.size() == 4) return n[0] * n[1] + n[2] + n[3];
  if (n.size() == 3) return n[0] * n[1] + n[2];
  if (n.size() == 2) {
    if (n[0] == 100 || n[1] == 100) return n[0] * n[1];
    return n[0] + n[1];
  }
  if (n.empty()) return std::nullopt;
  return n[0];
}

// Python repr() of a float that holds a small value (enough for word2number's results).
std::string PyFloatRepr(double v) {
  std::string s = fmt::format("{}", v);
  if (s.find_first_of(".eEn") == std::string::npos) s += ".0";
  return s;
}

bool IsAsciiDigits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

std::string EncodeUtf8(char32_t cp) {
  std::string out;
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
  return out;
}

// Unicode general category Nd (what Python's int() accepts as a digit).
bool IsUnicodeDecimal(char32_t cp) {
  if (cp < 0x80) return cp >= '0' && cp <= '9';
  static const Regex* nd = new Regex(R"(^\p{Nd}$)");
  return !nd->FindAll(EncodeUtf8(cp)).empty();
}

// When every code point of `s` is an Nd digit: the ASCII digits of int(s) before leading zeros
// are dropped. Nd digits come in contiguous runs of ten starting at zero, so a digit's value is its
// distance from the start of its block of consecutive Nd code points, modulo 10.
std::optional<std::string> UnicodeDecimalDigits(std::string_view s) {
  if (s.empty()) return std::nullopt;
  if (IsAsciiDigits(s)) return std::string(s);
  std::string out;
  for (char32_t cp : Decode(s).cps) {
    if (!IsUnicodeDecimal(cp)) return std::nullopt;
    char32_t start = cp;
    while (start > 0 && IsUnicodeDecimal(start - 1)) --start;
    out += static_cast<char>('0' + (cp - start) % 10);
  }
  return out;
}

std::optional<std::string> WordToNum(std::string_view text) {
  std::string s = ReplaceAll(text, "-", " ");
  for (char& c : s) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  if (auto digits = UnicodeDecimalDigits(s)) {  // str.isdigit() and int(s): leading zeros go
    size_t nz = digits->find_first_not_of('0');
    return nz == std::string::npos ? std::string("0") : digits->substr(nz);
  }
  // Other str.isdigit() strings (superscripts, circled digits) make int() raise: they fall through
  // to the word split below, find no number word and raise there too: "unchanged" either way.
  std::vector<std::string> clean;
  for (std::string& w : PySplitWhitespace(PyStrip(s))) {
    if (NumberWordValue(w)) clean.push_back(std::move(w));
  }
  if (clean.empty()) return std::nullopt;
  auto count = [&](std::string_view w) {
    size_t n = 0;
    for (const auto& c : clean) n += (c == w);
    return n;
  };
  if (count("thousand") > 1 || count("million") > 1 || count("billion") > 1 || count("point") > 1) {
    return std::nullopt;
  }
  std::vector<std::string> decimals;
  if (count("point") == 1) {
    auto it = std::find(clean.begin(), clean.end(), "point");
    decimals.assign(it + 1, clean.end());
    clean.erase(it, clean.end());
  }
  auto index_of = [&](std::string_view w) -> long {
    for (size_t i = 0; i < clean.size(); ++i) {
      if (clean[i] == w) return static_cast<long>(i);
    }
    return -1;
  };
  const long bi = index_of("billion"), mi = index_of("million"), ti = index_of("thousand");
  if ((ti > -1 && (ti < mi || ti < bi)) || (mi > -1 && mi < bi)) return std::nullopt;
  int64_t total = 0;
  const long n = static_cast<long>(clean.size());
  if (n == 1) {
    total += *NumberWordValue(clean[0]);
  } else if (n > 1) {
    if (bi > -1) {
      auto m = NumberFormation(clean, 0, bi);
      if (!m) return std::nullopt;
      total += *m * 1000000000;
    }
    if (mi > -1) {
      auto m = bi > -1 ? NumberFormation(clean, bi + 1, mi) : NumberFormation(clean, 0, mi);
      if (!m) return std::nullopt;
      total += *m * 1000000;
    }
    if (ti > -1) {
      std::optional<int64_t> m;
      if (mi > -1) {
        m = NumberFormation(clean, mi + 1, ti);
      } else if (bi > -1) {
        m = NumberFormation(clean, bi + 1, ti);
      } else {
        m = NumberFormation(clean, 0, ti);
      }
      if (!m) return std::nullopt;
      total += *m * 1000;
    }
    std::optional<int64_t> hundreds = 0;
    if (ti > -1 && ti != n - 1) {
      hundreds = NumberFormation(clean, ti + 1, n);
    } else if (mi > -1 && mi != n - 1) {
      hundreds = NumberFormation(clean, mi + 1, n);
    } else if (bi > -1 && bi != n - 1) {
      hundreds = NumberFormation(clean, bi + 1, n);
    } else if (ti == -1 && mi == -1 && bi == -1) {
      hundreds = NumberFormation(clean, 0, n);
    }
    if (!hundreds) return std::nullopt;
    total += *hundreds;
  }
  if (!decimals.empty()) {
    // get_decimal_sum: an int 0 when any word is not a digit word, else float("0.<digits>").
    std::string digits = "0.";
    for (const auto& w : decimals) {
      int64_t v = *NumberWordValue(w);
      if (v < 0 || v > 9 || w == "ten") {
        digits.clear();
        break;
      }
      digits += static_cast<char>('0' + v);
    }
    if (!digits.empty()) return PyFloatRepr(static_cast<double>(total) + std::stod(digits));
  }
  return std::to_string(total);
}

// ---------------------------------------------------------------------------------------------------------------
// strip_string pieces.

// Qwen's unit_texts (qwen_math_parser.py, "units mainly from MathQA"), used unescaped as regexes;
// the list then gets every entry + "s" appended, duplicates included.
constexpr std::array<std::string_view, 132> kUnitTexts = {
    "east",     "degree",   "mph",      "kmph",    "ft",
    "m sqaure", " m east",  "sq m",     "deg",     "mile",
    "q .",      "monkey",   "prime",    "ratio",   "profit of rs",
    "rd",       "o",        "gm",       "p . m",   "lb",
    "tile",     "per",      "dm",       "lt",      "gain",
    "ab",       "way",      "west",     "a .",     "b .",
    "c .",      "d .",      "e .",      "f .",     "g .",
    "h .",      "t",        "a",        "h",       "no change",
    "men",      "soldier",  "pie",      "bc",      "excess",
    "st",       "inches",   "noon",     "percent", "by",
    "gal",      "kmh",      "c",        "acre",    "rise",
    "a . m",    "th",       "π r 2",    "sq",      "mark",
    "l",        "toy",      "coin",     "sq . m",  "gallon",
    "° f",      "profit",   "minw",     "yr",      "women",
    "feet",     "am",       "pm",       "hr",      "cu cm",
    "square",   "v â € ™",  "are",      "rupee",   "rounds",
    "cubic",    "cc",       "mtr",      "s",       "ohm",
    "number",   "kmph",     "day",      "hour",    "minute",
    "min",      "second",   "man",      "woman",   "sec",
    "cube",     "mt",       "sq inch",  "mp",      "∏ cm ³",
    "hectare",  "more",     "sec",      "unit",    "cu . m",
    "cm 2",     "rs .",     "rs",       "kg",      "g",
    "month",    "km",       "m",        "cm",      "mm",
    "apple",    "liter",    "loss",     "yard",    "pure",
    "year",     "increase", "decrease", "d",       "less",
    "Surface",  "litre",    "pi sq m",  "s .",     "metre",
    "meter",    "inch",
};

struct StripRegexes {
  Regex begin_array{R"(\\begin\{array\}\{.*?\})"};
  Regex end_array{R"(\\end\{array\})"};
  Regex trailing_text{R"(\\text{.*?}$)"};
  Regex text_group{R"(\\text\{(.*?)\})"};
  Regex mbox{R"(\\mbox{.*?})"};
  Regex trailing_zeros_mid{R"((\d+)\.0*([^\d]))"};
  Regex trailing_zeros_end{R"((\d+)\.0*$)"};
  Regex sqrt_word{R"(\\sqrt(\w+))"};
  std::vector<Regex> units;
  // The literal text every match of units[i] contains (the unit up to its first '.', which is a
  // regex wildcard there): when a string lacks it, the substitution cannot change anything and is
  // skipped.
  std::vector<std::string> unit_literals;

  StripRegexes() {
    units.reserve(2 * kUnitTexts.size());
    for (const char* suffix : {"", "s"}) {
      for (std::string_view u : kUnitTexts) {
        units.emplace_back("(^|\\W)" + std::string(u) + suffix + "($|\\W)");
        const size_t dot = u.find('.');
        unit_literals.emplace_back(dot == std::string_view::npos ? std::string(u) + suffix
                                                                 : std::string(u.substr(0, dot)));
      }
    }
  }
};

const StripRegexes& Strip() {
  static const StripRegexes* regexes =
      new StripRegexes();  // never destroyed: usable during static teardown
  return *regexes;
}

// Qwen/Hendrycks _fix_fracs (indexing by code point).
std::string FixFracs(const std::string& s) {
  std::vector<std::string> substrs = PySplit(s, "\\frac");
  std::string out = substrs[0];
  for (size_t k = 1; k < substrs.size(); ++k) {
    const std::string& sub = substrs[k];
    out += "\\frac";
    if (!sub.empty() && sub[0] == '{') {
      out += sub;
      continue;
    }
    CodePoints d = Decode(sub);
    if (d.cps.size() < 2) return s;
    std::string a = sub.substr(0, d.offsets[1]);
    std::string b = sub.substr(d.offsets[1], d.offsets[2] - d.offsets[1]);
    std::string rest = sub.substr(d.offsets[2]);
    if (b != "{") {
      out += "{" + a + "}{" + b + "}" + rest;
    } else {
      out += "{" + a + "}" + b + rest;
    }
  }
  return out;
}

// True when int(x) succeeds and str(int(x)) == x, i.e. x is a canonical decimal integer.
bool IsCanonicalInt(std::string_view x) {
  if (!x.empty() && x[0] == '-') x.remove_prefix(1);
  if (x.empty() || !IsAsciiDigits(x)) return false;
  return x == "0" ? true : x[0] != '0';
}

std::string FixASlashB(const std::string& s) {
  std::vector<std::string> parts = PySplit(s, "/");
  if (parts.size() != 2) return s;
  const std::string& a = parts[0];
  const std::string& b = parts[1];
  if (!Contains(a, "sqrt") && !IsCanonicalInt(a)) return s;
  if (!Contains(b, "sqrt") && !IsCanonicalInt(b)) return s;
  if (a == "-0" || b == "-0") return s;  // int("-0") prints as "0"
  return "\\frac{" + a + "}{" + b + "}";
}

}  // namespace

// ---------------------------------------------------------------------------------------------------------------

std::string SanitizeUtf8(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    char32_t cp;
    size_t n = DecodeUtf8(text, i, &cp);
    if (n == 0) {
      out += "\xEF\xBF\xBD";
      ++i;
    } else {
      out.append(text.substr(i, n));
      i += n;
    }
  }
  return out;
}

std::string SalStripString(std::string_view input) {
  const StripRegexes& re = Strip();
  std::string s = SanitizeUtf8(input);
  s = PyStrip(s);
  s = ReplaceAll(s, "\n", "");
  while (!s.empty() && s.back() == '.') s.pop_back();  // rstrip(".")
  s = ReplaceAll(s, "\\!", "");

  // matrix
  s = re.begin_array.Sub(s, "\\begin{pmatrix}");
  s = re.end_array.Sub(s, "\\end{pmatrix}");
  s = ReplaceAll(s, "bmatrix", "pmatrix");

  s = ReplaceAll(s, "tfrac", "frac");
  s = ReplaceAll(s, "dfrac", "frac");
  s = ReplaceAll(s, "\\neq", "\\ne");
  s = ReplaceAll(s, "\\leq", "\\le");
  s = ReplaceAll(s, "\\geq", "\\ge");

  s = ReplaceAll(s, "\\left", "");
  s = ReplaceAll(s, "\\right", "");
  s = ReplaceAll(s, "\\{", "{");
  s = ReplaceAll(s, "\\}", "}");

  // A trailing \text{...} (a unit) goes unless nothing would be left.
  {
    std::string t = PyStrip(re.trailing_text.Sub(s, ""));
    if (!t.empty() && t != s) s = t;
  }

  // Unit words, two passes; an empty result is never taken.
  for (int pass = 0; pass < 2; ++pass) {
    for (size_t i = 0; i < re.units.size(); ++i) {
      if (s.find(re.unit_literals[i]) == std::string::npos) continue;
      std::string t = re.units[i].Sub(s, "$1$2");
      if (!t.empty()) s = std::move(t);
    }
  }

  s = ReplaceAll(s, "^{\\circ}", "");
  s = ReplaceAll(s, "^\\circ", "");
  s = ReplaceAll(s, "\\$", "");
  s = ReplaceAll(s, "$", "");
  s = ReplaceAll(s, "\\(", "");
  s = ReplaceAll(s, "\\)", "");

  if (auto num = WordToNum(s)) s = *num;

  s = re.text_group.Sub(s, "$1");
  for (std::string_view key :
       {"x=", "y=", "z=", "x\\in", "y\\in", "z\\in", "x\\to", "y\\to", "z\\to"}) {
    s = ReplaceAll(s, key, "");
  }
  s = ReplaceAll(s, "\\emptyset", "{}");
  s = ReplaceAll(s, "(-\\infty,\\infty)", "\\mathbb{R}");

  s = ReplaceAll(s, "\\%", "");
  s = ReplaceAll(s, "%", "");

  s = ReplaceAll(s, " .", " 0.");
  s = ReplaceAll(s, "{.", "{0.");
  // (Qwen's "unwrap {x}/(x)/[x] when isalnum()" never fires: a bracket is not alphanumeric.)

  s = ReplaceAll(s, "infinity", "\\infty");
  if (!Contains(s, "\\infty")) s = ReplaceAll(s, "inf", "\\infty");
  s = ReplaceAll(s, "+\\inity", "\\infty");

  s = ReplaceAll(s, "and", "");
  s = ReplaceAll(s, "\\mathbf", "");
  s = re.mbox.Sub(s, "");
  // (Qwen's quote removal discards its result: a no-op.)

  if (Contains(s, "j") && !Contains(s, "i")) s = ReplaceAll(s, "j", "i");

  s = re.trailing_zeros_mid.Sub(s, "$1$2");
  s = re.trailing_zeros_end.Sub(s, "$1");

  if (s.empty()) return s;
  if (s[0] == '.') s = "0" + s;

  {
    std::vector<std::string> parts = PySplit(s, "=");
    if (parts.size() == 2 && CodePointCount(parts[0]) <= 2) s = parts[1];
  }

  s = re.sqrt_word.Sub(s, "\\sqrt{$1}");
  s = ReplaceAll(s, " ", "");
  s = FixFracs(s);
  s = FixASlashB(s);
  return s;
}

std::string ExtractMathAnswerSal(std::string_view completion) {
  std::string s = ReplaceAll(SanitizeUtf8(completion), "\xD0\xBA\xD0\xB8", "");  // "ки"
  std::string pred;
  static constexpr std::string_view kMinerva = "final answer is $";
  static constexpr std::string_view kHope = "$. I hope";
  if (Contains(s, kMinerva) && Contains(s, kHope)) {
    std::string tmp = s.substr(s.find(kMinerva) + kMinerva.size());
    size_t hope = tmp.find(kHope);
    pred = PyStrip(hope == std::string::npos ? tmp : tmp.substr(0, hope));
  } else if (Contains(s, "boxed")) {
    std::string ans = s.substr(s.rfind("boxed") + 5);
    if (ans.empty()) {
      pred = "";
    } else if (ans[0] == '{') {
      int depth = 1;
      std::string a;
      for (size_t i = 1; i < ans.size(); ++i) {
        const char c = ans[i];
        if (c == '{') {
          ++depth;
        } else if (c == '}') {
          if (--depth == 0) break;
        }
        a += c;
      }
      pred = std::move(a);
    } else {
      pred = PyStrip(PySplit(ans, "$")[0]);
    }
  } else if (Contains(s, "he answer is")) {
    pred = PyStrip(s.substr(s.rfind("he answer is") + 12));
  } else if (Contains(s, "final answer is")) {
    pred = PyStrip(s.substr(s.rfind("final answer is") + 15));
  } else if (Contains(s, "\xE7\xAD\x94\xE6\xA1\x88\xE6\x98\xAF")) {  // "答案是"
    std::string part = PySplit(s, "\xE7\xAD\x94\xE6\xA1\x88\xE6\x98\xAF")[1];
    pred = PyStrip(PySplit(PyStrip(part), "\n\n")[0]);
  } else {
    static const Regex* number = new Regex(R"(-?\d*\.?\d+)");
    std::string no_commas = ReplaceAll(s, ",", "");
    auto matches = number->FindAll(no_commas);
    if (!matches.empty()) {
      pred = no_commas.substr(matches.back().first, matches.back().second - matches.back().first);
    }
  }

  static const Regex* newline_ws = new Regex(R"(\n\s*)");
  pred = newline_ws->Sub(pred, "");
  if (!pred.empty() && pred[0] == ':') pred.erase(0, 1);
  if (!pred.empty() && pred.back() == '.') pred.pop_back();
  if (!pred.empty() && pred.back() == '/') pred.pop_back();
  return SalStripString(pred);
}

namespace {

// The content of the last `\boxed{...}` or `\fbox{...}` with balanced braces (Hendrycks
// last_boxed_only_string), or nullopt.
std::optional<std::string> LastBalancedBoxed(std::string_view s) {
  size_t idx = s.rfind("\\boxed");
  size_t skip = 6;
  if (idx == std::string_view::npos) {
    idx = s.rfind("\\fbox");
    skip = 5;
  }
  if (idx == std::string_view::npos) return std::nullopt;
  size_t i = idx + skip;
  while (i < s.size() && s[i] == ' ') ++i;
  if (i >= s.size() || s[i] != '{') return std::nullopt;
  int depth = 0;
  for (size_t j = i; j < s.size(); ++j) {
    if (s[j] == '{') ++depth;
    if (s[j] == '}' && --depth == 0) return std::string(s.substr(i + 1, j - i - 1));
  }
  return std::nullopt;
}

// The content of the last LaTeX math environment: $$...$$, \[...\], \(...\) or $...$ (single line).
std::optional<std::string> LastLatexEnvironment(std::string_view s) {
  static const Regex* env =
      new Regex(R"(\$\$([\s\S]+?)\$\$|\\\[([\s\S]+?)\\\]|\\\((.+?)\\\)|\$([^$\n]+?)\$)");
  auto matches = env->FindAll(s);
  if (matches.empty()) return std::nullopt;
  std::string_view m = s.substr(matches.back().first, matches.back().second - matches.back().first);
  const size_t delim =
      (m.starts_with("$$") || m.starts_with("\\[") || m.starts_with("\\(")) ? 2 : 1;
  return std::string(m.substr(delim, m.size() - 2 * delim));
}

// The first number in `s` shaped like `-?[0-9][0-9,]*(\.[0-9]+)?` or `-?\.[0-9]+`, starting at or
// after `from`.
std::optional<std::string> ReadNumberAt(std::string_view s, size_t pos) {
  size_t i = pos;
  std::string out;
  if (i < s.size() && s[i] == '-') {
    out += '-';
    ++i;
  }
  auto is_digit = [&](size_t k) { return k < s.size() && s[k] >= '0' && s[k] <= '9'; };
  if (is_digit(i)) {
    while (i < s.size() && (is_digit(i) || s[i] == ',')) out += s[i++];
    if (i + 1 < s.size() && s[i] == '.' && is_digit(i + 1)) {
      out += s[i++];
      while (is_digit(i)) out += s[i++];
    }
    return out;
  }
  if (i + 1 < s.size() && s[i] == '.' && is_digit(i + 1)) {
    out += s[i++];
    while (is_digit(i)) out += s[i++];
    return out;
  }
  return std::nullopt;
}

// §3.2 step 4: remove ',' and '$', then one trailing '.'.
std::string NormalizeGsm8kNumber(std::string_view n) {
  std::string out;
  for (char c : n) {
    if (c != ',' && c != '$') out += c;
  }
  if (!out.empty() && out.back() == '.') out.pop_back();
  return out;
}

std::optional<std::string> FirstNumberIn(std::string_view s) {
  for (size_t i = 0; i < s.size(); ++i) {
    const bool starts = (s[i] >= '0' && s[i] <= '9') || s[i] == '-' || s[i] == '.';
    if (!starts) continue;
    if (auto n = ReadNumberAt(s, i)) {
      if (*n != "-") return n;
    }
  }
  return std::nullopt;
}

}  // namespace

std::string ExtractMathAnswer(std::string_view completion, const ExtractOptions& options) {
  std::string answer = ExtractMathAnswerSal(completion);
  if (!answer.empty() || !options.math_fallbacks) return answer;
  std::string text = SanitizeUtf8(completion);
  if (auto boxed = LastBalancedBoxed(text)) {
    std::string stripped = SalStripString(*boxed);
    if (!stripped.empty()) return stripped;
  }
  if (auto env = LastLatexEnvironment(text)) return SalStripString(*env);
  return answer;
}

std::optional<std::string> ExtractGsm8kAnswer(std::string_view completion,
                                              const ExtractOptions& options) {
  std::string text = SanitizeUtf8(completion);
  // Step 1: the last case-insensitive "final answer is".
  std::string lower = text;
  for (char& c : lower) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  size_t anchor = lower.rfind("final answer is");
  if (anchor != std::string::npos) {
    size_t i = anchor + 15;
    while (i < text.size()) {
      std::string_view rest = std::string_view(text).substr(i);
      if (rest[0] == ':' || rest[0] == ' ' || rest[0] == '$' || rest[0] == '\t') {
        ++i;
      } else if (rest.starts_with("\\(")) {
        i += 2;
      } else if (rest.starts_with("\\boxed{")) {
        i += 7;
      } else if (rest.starts_with("\\boxed ")) {
        i += 7;
      } else {
        break;
      }
    }
    if (auto n = ReadNumberAt(text, i)) return NormalizeGsm8kNumber(*n);
  }
  if (!options.gsm8k_fallbacks) return std::nullopt;
  // Step 2: the last \boxed{} content.
  if (auto boxed = LastBalancedBoxed(text)) {
    if (auto n = FirstNumberIn(*boxed)) return NormalizeGsm8kNumber(*n);
  }
  // Step 3: the last number anywhere: `-?[0-9][0-9,]*\.?[0-9]*`.
  static const Regex* number = new Regex(R"(-?[0-9][0-9,]*\.?[0-9]*)");
  auto matches = number->FindAll(text);
  if (matches.empty()) return std::nullopt;
  std::string n = NormalizeGsm8kNumber(
      text.substr(matches.back().first, matches.back().second - matches.back().first));
  if (n.empty() || n == "-") return std::nullopt;
  return n;
}

std::optional<std::string> ExtractGsm8kAnswerLlamaStrict(std::string_view completion) {
  static const Regex* strict = new Regex(R"(The final answer is ((-?[$0-9.,]{2,})|(-?[0-9]+)))");
  std::string text = SanitizeUtf8(completion);
  auto matches = strict->FindAll(text, 1);
  if (matches.empty()) return std::nullopt;
  return NormalizeGsm8kNumber(
      text.substr(matches.back().first, matches.back().second - matches.back().first));
}

std::string ExtractAnswer(std::string_view completion, Task task, const ExtractOptions& options) {
  if (task == Task::kMath) return ExtractMathAnswer(completion, options);
  return ExtractGsm8kAnswer(completion, options).value_or("");
}

}  // namespace ttc::experiments
