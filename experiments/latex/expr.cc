// Tokenizer, parser and evaluators for LaTeX answer expressions. See expr.h for the contract.
#include "experiments/latex/expr.h"

#include <cmath>
#include <cstring>
#include <unordered_map>

namespace ttc::experiments::latex {

namespace {

using boost::multiprecision::cpp_int;

enum class Tok : uint8_t { kNum, kLetter, kCmd, kSym, kEnd };

struct Token {
  Tok kind;
  std::string
      text;  // digits for numbers, the letter, the command name (no backslash), or the symbol
};

// Decimal digits to a big integer; cpp_int would read a leading 0 as octal.
cpp_int BigFromDigits(const std::string& digits) {
  size_t nz = digits.find_first_not_of('0');
  if (nz == std::string::npos) return 0;
  return cpp_int(digits.substr(nz));
}

bool IsCmdChar(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// Splits text into tokens; false on characters no answer expression uses.
bool Tokenize(std::string_view s, std::vector<Token>* out) {
  size_t i = 0;
  while (i < s.size()) {
    char c = s[i];
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      ++i;
    } else if (IsDigit(c) || (c == '.' && i + 1 < s.size() && IsDigit(s[i + 1]))) {
      size_t j = i;
      bool dot = false;
      while (j < s.size() &&
             (IsDigit(s[j]) || (s[j] == '.' && !dot && j + 1 < s.size() && IsDigit(s[j + 1])))) {
        if (s[j] == '.') dot = true;
        ++j;
      }
      out->push_back({Tok::kNum, std::string(s.substr(i, j - i))});
      i = j;
    } else if (IsCmdChar(c)) {
      out->push_back({Tok::kLetter, std::string(1, c)});
      ++i;
    } else if (c == '\\') {
      size_t j = i + 1;
      while (j < s.size() && IsCmdChar(s[j])) ++j;
      if (j == i + 1) {
        if (j >= s.size()) return false;
        char d = s[j];
        if (d == ',' || d == ';' || d == ':' || d == '!' || d == ' ') {
          i = j + 1;
          continue;
        }
        if (d == '%') {
          out->push_back({Tok::kSym, "%"});
        } else if (d == '{' || d == '}' || d == '|') {
          out->push_back({Tok::kSym, std::string("\\") + d});
        } else {
          return false;
        }
        i = j + 1;
        continue;
      }
      out->push_back({Tok::kCmd, std::string(s.substr(i + 1, j - i - 1))});
      i = j;
    } else if (std::strchr("+-*/^_!()[]{}|'%,", c) != nullptr) {
      out->push_back({Tok::kSym, std::string(1, c)});
      ++i;
    } else {
      return false;
    }
    if (out->size() > kMaxNodes) return false;
  }
  out->push_back({Tok::kEnd, ""});
  return true;
}

const std::unordered_map<std::string, Func>& FuncTable() {
  static const auto* table = new std::unordered_map<std::string, Func>{
      {"sin", Func::kSin},     {"cos", Func::kCos},     {"tan", Func::kTan},
      {"cot", Func::kCot},     {"sec", Func::kSec},     {"csc", Func::kCsc},
      {"arcsin", Func::kAsin}, {"arccos", Func::kAcos}, {"arctan", Func::kAtan},
      {"sinh", Func::kSinh},   {"cosh", Func::kCosh},   {"tanh", Func::kTanh},
      {"ln", Func::kLn},       {"log", Func::kLog},     {"exp", Func::kExp},
      {"cosec", Func::kCsc},
  };
  return *table;
}

bool IsGreek(const std::string& name) {
  static const char* kGreek[] = {
      "alpha",    "beta",    "gamma", "delta",  "epsilon", "varepsilon", "zeta",  "eta",   "theta",
      "vartheta", "iota",    "kappa", "lambda", "mu",      "nu",         "xi",    "rho",   "sigma",
      "tau",      "upsilon", "phi",   "varphi", "chi",     "psi",        "omega", "Gamma", "Delta",
      "Theta",    "Lambda",  "Xi",    "Sigma",  "Phi",     "Psi",        "Omega", "ell"};
  for (const char* g : kGreek) {
    if (name == g) return true;
  }
  return false;
}

class Parser {
 public:
  Parser(std::vector<Token> toks, Expr* e) : toks_(std::move(toks)), e_(e) {}

  bool Run() {
    int r = ParseSum();
    if (r < 0 || Peek().kind != Tok::kEnd) return false;
    e_->root = r;
    return true;
  }

 private:
  const Token& Peek(size_t k = 0) const {
    size_t i = std::min(pos_ + k, toks_.size() - 1);
    return toks_[i];
  }
  bool IsSym(const char* s, size_t k = 0) const {
    return Peek(k).kind == Tok::kSym && Peek(k).text == s;
  }
  bool IsCmd(const char* s, size_t k = 0) const {
    return Peek(k).kind == Tok::kCmd && Peek(k).text == s;
  }

  int Add(NodeKind kind, int value = 0, int a = -1, int b = -1) {
    if (e_->nodes.size() >= kMaxNodes) return -1;
    e_->nodes.push_back({kind, value, a, b});
    return static_cast<int>(e_->nodes.size()) - 1;
  }
  int AddNum(BigRational v) {
    e_->nums.push_back(std::move(v));
    return Add(NodeKind::kNum, static_cast<int>(e_->nums.size()) - 1);
  }
  int VarId(const std::string& name) {
    for (size_t i = 0; i < e_->vars.size(); ++i) {
      if (e_->vars[i] == name) return static_cast<int>(i);
    }
    e_->vars.push_back(name);
    return static_cast<int>(e_->vars.size()) - 1;
  }

  struct DepthGuard {
    explicit DepthGuard(int* d) : d_(d) { ++*d_; }
    ~DepthGuard() { --*d_; }
    int* d_;
  };

  int ParseSum() {
    DepthGuard g(&depth_);
    if (depth_ > kMaxDepth) return -1;
    int left = ParseTerm();
    while (left >= 0) {
      if (IsSym("+")) {
        ++pos_;
        int r = ParseTerm();
        if (r < 0) return -1;
        left = Add(NodeKind::kAdd, 0, left, r);
      } else if (IsSym("-")) {
        ++pos_;
        int r = ParseTerm();
        if (r < 0) return -1;
        left = Add(NodeKind::kSub, 0, left, r);
      } else if (IsCmd("pm") || IsCmd("mp")) {
        ++pos_;
        int r = ParseTerm();
        if (r < 0) return -1;
        left = Add(NodeKind::kPm, e_->pm_count++, left, r);
      } else {
        break;
      }
    }
    return left;
  }

  bool StartsAtom() const {
    const Token& t = Peek();
    switch (t.kind) {
      case Tok::kNum:
      case Tok::kLetter:
        return true;
      case Tok::kSym:
        return t.text == "(" || t.text == "{" || t.text == "[" ||
               (t.text == "|" && abs_depth_ == 0);
      case Tok::kCmd:
        return t.text == "frac" || t.text == "sqrt" || t.text == "binom" || t.text == "pi" ||
               t.text == "infty" || t.text == "lfloor" || t.text == "lceil" ||
               FuncTable().count(t.text) || IsGreek(t.text) || t.text == "mathbf" ||
               t.text == "vec" || t.text == "overline" || t.text == "bar" || t.text == "hat" ||
               t.text == "tilde";
      default:
        return false;
    }
  }

  int ParseTerm() {
    DepthGuard g(&depth_);
    if (depth_ > kMaxDepth) return -1;
    int left = ParseUnary();
    while (left >= 0) {
      if (IsSym("*") || IsCmd("cdot") || IsCmd("times") || IsCmd("ast")) {
        ++pos_;
        int r = ParseUnary();
        if (r < 0) return -1;
        left = Add(NodeKind::kMul, 0, left, r);
      } else if (IsSym("/") || IsCmd("div")) {
        ++pos_;
        int r = ParseUnary();
        if (r < 0) return -1;
        left = Add(NodeKind::kDiv, 0, left, r);
      } else if (StartsAtom()) {
        int r = ParsePower();
        if (r < 0) return -1;
        left = Add(NodeKind::kMul, 0, left, r);
      } else {
        break;
      }
    }
    return left;
  }

  int ParseUnary() {
    DepthGuard g(&depth_);
    if (depth_ > kMaxDepth) return -1;
    if (IsSym("-")) {
      ++pos_;
      int a = ParseUnary();
      return a < 0 ? -1 : Add(NodeKind::kNeg, 0, a);
    }
    if (IsSym("+")) {
      ++pos_;
      return ParseUnary();
    }
    if (IsCmd("pm") || IsCmd("mp")) {
      ++pos_;
      int a = ParseUnary();
      if (a < 0) return -1;
      int zero = AddNum(0);
      return Add(NodeKind::kPm, e_->pm_count++, zero, a);
    }
    return ParsePower();
  }

  // The exponent after ^: a braced group, or a single character / atom.
  int ParseExponent() {
    if (IsSym("{")) return ParseGroup("{", "}");
    if (IsSym("-")) {
      ++pos_;
      int a = ParseExponent();
      return a < 0 ? -1 : Add(NodeKind::kNeg, 0, a);
    }
    if (Peek().kind == Tok::kNum) return SingleDigit();
    return ParseAtom();
  }

  // Takes the first character of a number token (\frac12, x^23, \sqrt2) and leaves the rest.
  int SingleDigit() {
    Token& t = toks_[pos_];
    if (t.text.size() > 1 && t.text[0] != '.') {
      std::string first = t.text.substr(0, 1);
      t.text.erase(0, 1);
      return AddNum(BigRational(std::stoi(first)));
    }
    return ParseAtom();
  }

  int ParsePower() {
    DepthGuard g(&depth_);
    if (depth_ > kMaxDepth) return -1;
    int base = ParsePostfix();
    if (base < 0) return -1;
    if (IsSym("^")) {
      ++pos_;
      int ex = ParseExponent();
      if (ex < 0) return -1;
      // Factorial or more exponent after the exponent: (a^b)! is rare; x^2! is read as x^(2!) by
      // nobody.
      base = Add(NodeKind::kPow, 0, base, ex);
      while (base >= 0 && IsSym("!")) {
        ++pos_;
        base = Add(NodeKind::kFact, 0, base);
      }
    }
    return base;
  }

  int ParsePostfix() {
    int a = ParseAtom();
    while (a >= 0) {
      if (IsSym("!")) {
        ++pos_;
        a = Add(NodeKind::kFact, 0, a);
      } else if (IsSym("%")) {
        ++pos_;
        int hundred = AddNum(BigRational(100));
        a = Add(NodeKind::kDiv, 0, a, hundred);
      } else if (IsCmd("circ")) {
        ++pos_;
      } else {
        break;
      }
    }
    return a;
  }

  int ParseGroup(const char* open, const char* close) {
    if (!IsSym(open)) return -1;
    ++pos_;
    int inner = ParseSum();
    if (inner < 0 || !IsSym(close)) return -1;
    ++pos_;
    return inner;
  }

  // A braced argument, or a single token (\frac12, \sqrt2, \frac ab).
  int ParseArg() {
    if (IsSym("{")) return ParseGroup("{", "}");
    if (Peek().kind == Tok::kNum) return SingleDigit();
    if (Peek().kind == Tok::kLetter) {
      int v = Add(NodeKind::kVar, VarId(Peek().text));
      ++pos_;
      return v;
    }
    return ParseAtom();
  }

  // Raw text of a subscript, used as part of a variable's name.
  bool SubscriptName(std::string* name) {
    if (IsSym("{")) {
      int depth = 0;
      std::string text;
      while (Peek().kind != Tok::kEnd) {
        if (IsSym("{")) ++depth;
        if (IsSym("}")) {
          if (--depth == 0) {
            ++pos_;
            *name = text;
            return true;
          }
        }
        if (depth > 1 || !IsSym("{")) text += (Peek().kind == Tok::kCmd ? "\\" : "") + Peek().text;
        ++pos_;
      }
      return false;
    }
    if (Peek().kind == Tok::kNum) {
      *name = Peek().text.substr(0, 1);
      if (Peek().text.size() > 1) {
        toks_[pos_].text.erase(0, 1);
      } else {
        ++pos_;
      }
      return true;
    }
    if (Peek().kind == Tok::kLetter || Peek().kind == Tok::kCmd) {
      *name = Peek().text;
      ++pos_;
      return true;
    }
    return false;
  }

  int ParseFunction(Func f) {
    int base = -1;
    int power = -1;
    if (f == Func::kLog && IsSym("_")) {
      ++pos_;
      base = ParseArg();
      if (base < 0) return -1;
      f = Func::kLogBase;
    }
    if (IsSym("^")) {
      ++pos_;
      power = ParseExponent();
      if (power < 0) return -1;
      const Node& pn = e_->nodes[power];
      // sin^{-1} is the inverse function, not a reciprocal.
      if (pn.kind == NodeKind::kNeg && e_->nodes[pn.a].kind == NodeKind::kNum &&
          e_->nums[e_->nodes[pn.a].value] == 1) {
        if (f == Func::kSin)
          f = Func::kAsin;
        else if (f == Func::kCos)
          f = Func::kAcos;
        else if (f == Func::kTan)
          f = Func::kAtan;
        else
          return -1;
        power = -1;
      }
    }
    int arg;
    if (IsSym("(") || IsSym("{") || IsSym("[")) {
      arg = IsSym("(")   ? ParseGroup("(", ")")
            : IsSym("{") ? ParseGroup("{", "}")
                         : ParseGroup("[", "]");
    } else {
      // \sin 2x, \cos a: the argument runs through numbers and letters, not through another
      // function.
      arg = ParsePower();
      while (arg >= 0 &&
             (Peek().kind == Tok::kNum || Peek().kind == Tok::kLetter ||
              (Peek().kind == Tok::kCmd && (IsGreek(Peek().text) || Peek().text == "pi")))) {
        int r = ParsePower();
        if (r < 0) return -1;
        arg = Add(NodeKind::kMul, 0, arg, r);
      }
    }
    if (arg < 0) return -1;
    int call = Add(NodeKind::kFunc, static_cast<int>(f), arg, base);
    if (power >= 0) call = Add(NodeKind::kPow, 0, call, power);
    return call;
  }

  int ParseAtom() {
    DepthGuard g(&depth_);
    if (depth_ > kMaxDepth) return -1;
    const Token t = Peek();
    switch (t.kind) {
      case Tok::kNum: {
        ++pos_;
        return ParseNumber(t.text);
      }
      case Tok::kLetter: {
        ++pos_;
        std::string name = t.text;
        if (IsSym("_")) {
          ++pos_;
          // x_{n-k-1}: an expression subscript reads as an unknown function of it.
          if (IsSym("{")) {
            size_t save = pos_;
            std::string sub;
            if (!SubscriptName(&sub)) return -1;
            bool simple = sub.size() == 1 || (sub.find_first_of("+-*/") == std::string::npos);
            if (!simple) {
              pos_ = save;
              int arg = ParseGroup("{", "}");
              if (arg < 0) return -1;
              return Add(NodeKind::kApply, VarId(name + "_"), arg);
            }
            name += "_" + sub;
          } else {
            std::string sub;
            if (!SubscriptName(&sub)) return -1;
            name += "_" + sub;
          }
        }
        if (name == "e") return Add(NodeKind::kE);
        if (name == "i") return Add(NodeKind::kI);
        // f(x), g(2): the usual names of unknown functions.
        if ((name == "f" || name == "g" || name == "h") && IsSym("(")) {
          int arg = ParseGroup("(", ")");
          if (arg < 0) return -1;
          return Add(NodeKind::kApply, VarId(name + "()"), arg);
        }
        return Add(NodeKind::kVar, VarId(name));
      }
      case Tok::kSym: {
        if (t.text == "(") return ParseGroup("(", ")");
        if (t.text == "{") return ParseGroup("{", "}");
        if (t.text == "[") return ParseGroup("[", "]");
        if (t.text == "|") {
          ++pos_;
          ++abs_depth_;
          int inner = ParseSum();
          --abs_depth_;
          if (inner < 0 || !IsSym("|")) return -1;
          ++pos_;
          return Add(NodeKind::kFunc, static_cast<int>(Func::kAbs), inner);
        }
        return -1;
      }
      case Tok::kCmd: {
        ++pos_;
        const std::string& c = t.text;
        if (c == "frac") {
          int a = ParseArg();
          if (a < 0) return -1;
          int b = ParseArg();
          if (b < 0) return -1;
          return Add(NodeKind::kDiv, 0, a, b);
        }
        if (c == "binom") {
          int a = ParseArg();
          if (a < 0) return -1;
          int b = ParseArg();
          if (b < 0) return -1;
          return Add(NodeKind::kBinom, 0, a, b);
        }
        if (c == "sqrt") {
          int degree = -1;
          if (IsSym("[")) {
            degree = ParseGroup("[", "]");
            if (degree < 0) return -1;
          }
          int a = ParseArg();
          if (a < 0) return -1;
          if (degree >= 0) return Add(NodeKind::kFunc, static_cast<int>(Func::kRoot), a, degree);
          return Add(NodeKind::kFunc, static_cast<int>(Func::kSqrt), a);
        }
        if (c == "pi") return Add(NodeKind::kPi);
        if (c == "infty") {
          e_->has_inf = true;
          return Add(NodeKind::kInf);
        }
        if (c == "lfloor" || c == "lceil") {
          int inner = ParseSum();
          if (inner < 0) return -1;
          if (!IsCmd(c == "lfloor" ? "rfloor" : "rceil")) return -1;
          ++pos_;
          return Add(NodeKind::kFunc, static_cast<int>(c == "lfloor" ? Func::kFloor : Func::kCeil),
                     inner);
        }
        if (c == "mathbf" || c == "vec" || c == "overline" || c == "bar" || c == "hat" ||
            c == "tilde") {
          std::string name;
          if (!SubscriptName(&name)) return -1;
          return Add(NodeKind::kVar, VarId("\\" + c + "{" + name + "}"));
        }
        auto it = FuncTable().find(c);
        if (it != FuncTable().end()) return ParseFunction(it->second);
        if (IsGreek(c)) {
          std::string name = "\\" + c;
          if (IsSym("_")) {
            ++pos_;
            std::string sub;
            if (!SubscriptName(&sub)) return -1;
            name += "_" + sub;
          }
          return Add(NodeKind::kVar, VarId(name));
        }
        return -1;
      }
      default:
        return -1;
    }
  }

  int ParseNumber(const std::string& digits) {
    // Base-n numerals: 204_5, 4210_{5}.
    if (IsSym("_") && digits.find('.') == std::string::npos) {
      size_t save = pos_;
      ++pos_;
      std::string base_text;
      if (IsSym("{") && Peek(1).kind == Tok::kNum && Peek(2).kind == Tok::kSym &&
          Peek(2).text == "}") {
        base_text = Peek(1).text;
        pos_ += 3;
      } else if (Peek().kind == Tok::kNum) {
        base_text = Peek().text;
        ++pos_;
      }
      if (!base_text.empty() && base_text.size() <= 2 && base_text.find('.') == std::string::npos) {
        int base = std::stoi(base_text);
        if (base >= 2 && base <= 36 && digits.size() <= 256) {
          cpp_int v = 0;
          for (char d : digits) {
            int dv = d - '0';
            if (dv >= base) return -1;
            v = v * base + dv;
          }
          return AddNum(BigRational(v));
        }
      }
      pos_ = save;
      return -1;
    }
    if (digits.size() > 1000) return -1;
    size_t dot = digits.find('.');
    if (dot == std::string::npos) return AddNum(BigRational(BigFromDigits(digits)));
    std::string whole = digits.substr(0, dot);
    std::string frac = digits.substr(dot + 1);
    cpp_int num = BigFromDigits(whole);
    cpp_int den = 1;
    for (size_t k = 0; k < frac.size(); ++k) {
      num = num * 10 + (frac[k] - '0');
      den *= 10;
    }
    decimal_places_ = static_cast<int>(frac.size());
    return AddNum(BigRational(num, den));
  }

  std::vector<Token> toks_;
  Expr* e_;
  size_t pos_ = 0;
  int depth_ = 0;
  int abs_depth_ = 0;

 public:
  int decimal_places_ = -1;
};

// ---- exact evaluation ----

bool TooBig(const BigRational& v) {
  return boost::multiprecision::msb(abs(boost::multiprecision::numerator(v)) + 1) > kMaxBits ||
         boost::multiprecision::msb(boost::multiprecision::denominator(v)) > kMaxBits;
}

bool IsInteger(const BigRational& v) { return boost::multiprecision::denominator(v) == 1; }

std::optional<cpp_int> ExactSqrt(const cpp_int& v) {
  if (v < 0) return std::nullopt;
  cpp_int r = boost::multiprecision::sqrt(v);
  if (r * r != v) return std::nullopt;
  return r;
}

std::optional<BigRational> Exact(const Expr& e, int i, int* budget) {
  if (--*budget < 0) return std::nullopt;
  const Node& n = e.nodes[i];
  switch (n.kind) {
    case NodeKind::kNum:
      return e.nums[n.value];
    case NodeKind::kNeg: {
      auto a = Exact(e, n.a, budget);
      if (!a) return std::nullopt;
      return BigRational(-*a);
    }
    case NodeKind::kAdd:
    case NodeKind::kSub:
    case NodeKind::kMul:
    case NodeKind::kDiv: {
      auto a = Exact(e, n.a, budget);
      if (!a) return std::nullopt;
      auto b = Exact(e, n.b, budget);
      if (!b) return std::nullopt;
      BigRational r;
      if (n.kind == NodeKind::kAdd)
        r = *a + *b;
      else if (n.kind == NodeKind::kSub)
        r = *a - *b;
      else if (n.kind == NodeKind::kMul)
        r = *a * *b;
      else {
        if (*b == 0) return std::nullopt;
        r = *a / *b;
      }
      if (TooBig(r)) return std::nullopt;
      return r;
    }
    case NodeKind::kPow: {
      auto a = Exact(e, n.a, budget);
      if (!a) return std::nullopt;
      auto b = Exact(e, n.b, budget);
      if (!b) return std::nullopt;
      if (!IsInteger(*b)) {
        // Square roots of perfect squares stay exact: 4^{1/2}, (9/4)^{-1/2}.
        if (boost::multiprecision::denominator(*b) != 2 || *a < 0) return std::nullopt;
        auto sn = ExactSqrt(boost::multiprecision::numerator(*a));
        auto sd = ExactSqrt(boost::multiprecision::denominator(*a));
        if (!sn || !sd) return std::nullopt;
        BigRational root(*sn, *sd);
        BigRational k = *b * 2;  // odd integer
        BigRational out = 1;
        cpp_int kk = boost::multiprecision::numerator(k);
        if (abs(kk) > 64) return std::nullopt;
        int ki = static_cast<int>(kk);
        for (int j = 0; j < std::abs(ki); ++j) out *= root;
        if (ki < 0) {
          if (out == 0) return std::nullopt;
          out = 1 / out;
        }
        return out;
      }
      cpp_int ex = boost::multiprecision::numerator(*b);
      if (*a == 0) {
        if (ex <= 0) return std::nullopt;
        return BigRational(0);
      }
      if (*a == 1) return BigRational(1);
      if (*a == -1) return BigRational((ex & 1) ? -1 : 1);
      if (abs(ex) > kMaxBits) return std::nullopt;
      int exi = static_cast<int>(ex);
      unsigned bits =
          std::max(boost::multiprecision::msb(abs(boost::multiprecision::numerator(*a))),
                   boost::multiprecision::msb(boost::multiprecision::denominator(*a))) +
          1;
      if (static_cast<unsigned long>(bits) * std::abs(exi) > kMaxBits) return std::nullopt;
      cpp_int num = boost::multiprecision::pow(boost::multiprecision::numerator(*a), std::abs(exi));
      cpp_int den =
          boost::multiprecision::pow(boost::multiprecision::denominator(*a), std::abs(exi));
      if (exi < 0) std::swap(num, den);
      return BigRational(num, den);
    }
    case NodeKind::kFact: {
      auto a = Exact(e, n.a, budget);
      if (!a || !IsInteger(*a) || *a < 0 || *a > 1500) return std::nullopt;
      int k = static_cast<int>(boost::multiprecision::numerator(*a));
      cpp_int r = 1;
      for (int j = 2; j <= k; ++j) r *= j;
      return BigRational(r);
    }
    case NodeKind::kBinom: {
      auto a = Exact(e, n.a, budget);
      auto b = a ? Exact(e, n.b, budget) : std::nullopt;
      if (!a || !b || !IsInteger(*a) || !IsInteger(*b) || *a < 0 || *a > 5000) return std::nullopt;
      if (*b < 0 || *b > *a) return BigRational(0);
      int nn = static_cast<int>(boost::multiprecision::numerator(*a));
      int kk = static_cast<int>(boost::multiprecision::numerator(*b));
      kk = std::min(kk, nn - kk);
      cpp_int r = 1;
      for (int j = 1; j <= kk; ++j) r = r * (nn - kk + j) / j;
      return BigRational(r);
    }
    case NodeKind::kFunc: {
      Func f = static_cast<Func>(n.value);
      if (f == Func::kSqrt) {
        auto a = Exact(e, n.a, budget);
        if (!a || *a < 0) return std::nullopt;
        auto sn = ExactSqrt(boost::multiprecision::numerator(*a));
        auto sd = ExactSqrt(boost::multiprecision::denominator(*a));
        if (!sn || !sd) return std::nullopt;
        return BigRational(*sn, *sd);
      }
      if (f == Func::kAbs) {
        auto a = Exact(e, n.a, budget);
        if (!a) return std::nullopt;
        return BigRational(abs(*a));
      }
      return std::nullopt;
    }
    default:
      return std::nullopt;
  }
}

// ---- numeric evaluation ----

double UnknownFunction(int seed, double x) {
  // A fixed smooth pseudo-random function per name, so f(x) and f(y) differ unless x = y.
  double a = 0.7 + 0.13 * (seed % 7), b = 1.3 + 0.29 * (seed % 5), c = 0.37 * (seed % 11);
  return std::sin(a * x + c) * 1.7 + std::cos(b * x * x * 0.31 + 0.5) + 0.11 * x;
}

Complex Num(const Expr& e, int i, const std::vector<double>& vars, uint32_t mask) {
  const Node& n = e.nodes[i];
  const double nan = std::nan("");
  switch (n.kind) {
    case NodeKind::kNum:
      return Complex(e.nums[n.value].convert_to<double>(), 0);
    case NodeKind::kVar:
      return Complex(static_cast<size_t>(n.value) < vars.size() ? vars[n.value] : nan, 0);
    case NodeKind::kPi:
      return Complex(M_PI, 0);
    case NodeKind::kE:
      return Complex(M_E, 0);
    case NodeKind::kI:
      return Complex(0, 1);
    case NodeKind::kInf:
      return Complex(HUGE_VAL, 0);
    case NodeKind::kAdd:
      return Num(e, n.a, vars, mask) + Num(e, n.b, vars, mask);
    case NodeKind::kSub:
      return Num(e, n.a, vars, mask) - Num(e, n.b, vars, mask);
    case NodeKind::kMul: {
      Complex a = Num(e, n.a, vars, mask), b = Num(e, n.b, vars, mask);
      if (a.imag() == 0 && b.imag() == 0) return Complex(a.real() * b.real(), 0);
      return a * b;
    }
    case NodeKind::kDiv: {
      Complex a = Num(e, n.a, vars, mask), b = Num(e, n.b, vars, mask);
      if (b == Complex(0, 0)) return Complex(nan, nan);
      if (a.imag() == 0 && b.imag() == 0) return Complex(a.real() / b.real(), 0);
      return a / b;
    }
    case NodeKind::kPow: {
      Complex a = Num(e, n.a, vars, mask), b = Num(e, n.b, vars, mask);
      if (a.imag() == 0 && b.imag() == 0) {
        double br = b.real();
        if (br == std::round(br)) return Complex(std::pow(a.real(), br), 0);
        if (a.real() >= 0) return Complex(std::pow(a.real(), br), 0);
        // A real odd root of a negative number: (-8)^{1/3} = -2, as people mean it.
        double inv = 1.0 / br;
        if (std::abs(inv - std::round(inv)) < 1e-12 &&
            static_cast<long long>(std::round(inv)) % 2 != 0) {
          return Complex(-std::pow(-a.real(), br), 0);
        }
      }
      if (a == Complex(0, 0)) return Complex(0, 0);
      return std::pow(a.imag() == 0 ? Complex(a.real(), 0.0) : a, b);
    }
    case NodeKind::kNeg: {
      // Keep +0 imaginary parts: -(1+0i) must stay on the principal branch for sqrt and log.
      Complex a = Num(e, n.a, vars, mask);
      return Complex(-a.real(), a.imag() == 0 ? 0.0 : -a.imag());
    }
    case NodeKind::kPm: {
      Complex a = Num(e, n.a, vars, mask), b = Num(e, n.b, vars, mask);
      return (mask >> n.value) & 1 ? a - b : a + b;
    }
    case NodeKind::kFact: {
      Complex a = Num(e, n.a, vars, mask);
      if (a.imag() != 0 || a.real() < 0 || a.real() > 170) return Complex(nan, nan);
      return Complex(std::tgamma(a.real() + 1), 0);
    }
    case NodeKind::kBinom: {
      Complex a = Num(e, n.a, vars, mask), b = Num(e, n.b, vars, mask);
      if (a.imag() != 0 || b.imag() != 0) return Complex(nan, nan);
      double x = a.real(), k = b.real();
      return Complex(std::exp(std::lgamma(x + 1) - std::lgamma(k + 1) - std::lgamma(x - k + 1)), 0);
    }
    case NodeKind::kApply: {
      Complex a = Num(e, n.a, vars, mask);
      if (a.imag() != 0) return Complex(nan, nan);
      return Complex(
          UnknownFunction(static_cast<int>(std::hash<std::string>{}(e.vars[n.value]) % 1000),
                          a.real()),
          0);
    }
    case NodeKind::kFunc: {
      Complex a = Num(e, n.a, vars, mask);
      if (a.imag() == 0) a = Complex(a.real(), 0.0);
      bool real = a.imag() == 0;
      double x = a.real();
      switch (static_cast<Func>(n.value)) {
        case Func::kSqrt:
          return real && x >= 0 ? Complex(std::sqrt(x), 0) : std::sqrt(a);
        case Func::kRoot: {
          Complex d = Num(e, n.b, vars, mask);
          if (real && d.imag() == 0) {
            double k = d.real();
            if (x >= 0) return Complex(std::pow(x, 1.0 / k), 0);
            if (k == std::round(k) && static_cast<long long>(k) % 2 != 0)
              return Complex(-std::pow(-x, 1.0 / k), 0);
          }
          return std::pow(a, 1.0 / d);
        }
        case Func::kSin:
          return real ? Complex(std::sin(x), 0) : std::sin(a);
        case Func::kCos:
          return real ? Complex(std::cos(x), 0) : std::cos(a);
        case Func::kTan:
          return real ? Complex(std::tan(x), 0) : std::tan(a);
        case Func::kCot:
          return 1.0 / (real ? Complex(std::tan(x), 0) : std::tan(a));
        case Func::kSec:
          return 1.0 / (real ? Complex(std::cos(x), 0) : std::cos(a));
        case Func::kCsc:
          return 1.0 / (real ? Complex(std::sin(x), 0) : std::sin(a));
        case Func::kAsin:
          return std::asin(a);
        case Func::kAcos:
          return std::acos(a);
        case Func::kAtan:
          return std::atan(a);
        case Func::kSinh:
          return std::sinh(a);
        case Func::kCosh:
          return std::cosh(a);
        case Func::kTanh:
          return std::tanh(a);
        case Func::kLn:
        case Func::kLog:
          return real && x > 0 ? Complex(std::log(x), 0) : std::log(a);
        case Func::kLogBase: {
          Complex b = Num(e, n.b, vars, mask);
          return std::log(a) / std::log(b);
        }
        case Func::kExp:
          return std::exp(a);
        case Func::kAbs:
          return Complex(std::abs(a), 0);
        case Func::kFloor:
          return real ? Complex(std::floor(x), 0) : Complex(nan, nan);
        case Func::kCeil:
          return real ? Complex(std::ceil(x), 0) : Complex(nan, nan);
      }
      return Complex(nan, nan);
    }
  }
  return Complex(nan, nan);
}

}  // namespace

std::optional<Expr> ParseExpr(std::string_view text) {
  if (text.size() > kMaxExprChars) return std::nullopt;
  std::vector<Token> toks;
  if (!Tokenize(text, &toks) || toks.size() <= 1) return std::nullopt;
  Expr e;
  bool lone_decimal = (toks.size() == 2 && toks[0].kind == Tok::kNum) ||
                      (toks.size() == 3 && toks[0].kind == Tok::kSym && toks[0].text == "-" &&
                       toks[1].kind == Tok::kNum);
  Parser p(std::move(toks), &e);
  try {
    if (!p.Run()) return std::nullopt;
  } catch (const std::exception&) {
    return std::nullopt;
  }
  if (lone_decimal && p.decimal_places_ > 0) e.lone_decimal_places = p.decimal_places_;
  if (e.pm_count > 4) return std::nullopt;
  return e;
}

std::optional<BigRational> EvalExact(const Expr& e) {
  if (e.root < 0) return std::nullopt;
  int budget = static_cast<int>(kMaxNodes) * 2;
  try {
    return Exact(e, e.root, &budget);
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

Complex EvalNumeric(const Expr& e, const std::vector<double>& var_values, uint32_t pm_mask) {
  if (e.root < 0) return Complex(std::nan(""), std::nan(""));
  return Num(e, e.root, var_values, pm_mask);
}

bool LooksLikeMath(std::string_view text) {
  std::vector<Token> toks;
  return text.size() <= kMaxExprChars && Tokenize(text, &toks);
}

}  // namespace ttc::experiments::latex
