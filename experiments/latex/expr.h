// LaTeX math expressions for answer grading: a tokenizer, a bounded recursive-descent parser into a
// compact AST, an exact evaluator (big rationals, for expressions of numbers) and a complex-double
// evaluator (for everything, with free variables bound to chosen values). Every entry point is
// bounded: input length, nesting depth, node count and big-integer size all have hard limits, and
// exceeding one is an ordinary parse or evaluation failure. Thread-safety: Expr is an immutable
// value after parsing; evaluating one from many threads at once is safe.
#pragma once

#include <boost/multiprecision/cpp_int.hpp>
#include <complex>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ttc::experiments::latex {

using BigRational = boost::multiprecision::cpp_rational;
using Complex = std::complex<double>;

// Limits that keep every parse and evaluation small and fast, whatever the input.
inline constexpr size_t kMaxExprChars = 4096;
inline constexpr int kMaxDepth = 128;
inline constexpr size_t kMaxNodes = 4096;
inline constexpr unsigned kMaxBits = 16384;  // numerator or denominator of any exact intermediate

enum class NodeKind : uint8_t {
  kNum,  // nums[value]
  kVar,  // vars[value]: a free variable (letter, greek letter, subscripted letter)
  kPi,
  kE,
  kI,
  kInf,
  kAdd,    // a + b
  kSub,    // a - b
  kMul,    // a * b
  kDiv,    // a / b
  kPow,    // a ^ b
  kNeg,    // -a
  kPm,     // a ± b (b alone when a < 0); value = pm index
  kFact,   // a!
  kFunc,   // funcs: value = Func, a = argument, b = base or root degree (optional)
  kApply,  // an unknown function: vars[value](a)
  kBinom,  // binom(a, b)
};

enum class Func : uint8_t {
  kSqrt,
  kRoot,
  kSin,
  kCos,
  kTan,
  kCot,
  kSec,
  kCsc,
  kAsin,
  kAcos,
  kAtan,
  kSinh,
  kCosh,
  kTanh,
  kLn,
  kLog,
  kLogBase,
  kExp,
  kAbs,
  kFloor,
  kCeil,
};

struct Node {
  NodeKind kind;
  int32_t value = 0;
  int32_t a = -1;
  int32_t b = -1;
};

// A parsed expression. Numbers written as decimals are kept exactly (0.6 is 3/5) and flagged.
struct Expr {
  std::vector<Node> nodes;
  std::vector<BigRational> nums;
  std::vector<std::string> vars;  // distinct names of free variables and unknown functions
  int root = -1;
  int pm_count = 0;  // number of ± signs
  bool has_inf = false;
  // When the whole expression is one decimal literal (possibly negated): its count of decimals,
  // else -1.
  int lone_decimal_places = -1;
};

// Parses one scalar expression (no top-level commas or relations). Returns nullopt on any syntax
// error or limit.
std::optional<Expr> ParseExpr(std::string_view text);

// Exact value when the expression is built from numbers with + - * / integer powers, factorials and
// binomials.
std::optional<BigRational> EvalExact(const Expr& e);

// Complex value with variables bound by `var_values` (indexed like e.vars; unknown functions use
// the entry as a seed) and ± signs chosen by bit i of `pm_mask`. NaN components signal failure.
Complex EvalNumeric(const Expr& e, const std::vector<double>& var_values, uint32_t pm_mask);

// True when the text holds characters or commands the tokenizer rejects outright (quick pre-check).
bool LooksLikeMath(std::string_view text);

}  // namespace ttc::experiments::latex
