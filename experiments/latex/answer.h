// Structured final answers for strict grading: normalization of a raw answer string (boxed and
// $...$ extraction, spacing, units, thousands separators, percent, degrees), parsing into a small
// tree (expression, text, tuple / interval / set / bare list, matrix, relation chain, union) and
// the equivalence test between two such trees (exact rationals first, randomized identity testing
// for free variables, proportionality for equations). Every step is bounded (see expr.h limits);
// garbage parses as text and compares by its normalized spelling. Thread-safety: Answer is
// immutable after parsing; all functions are pure and safe to call concurrently.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "experiments/latex/expr.h"

namespace ttc::experiments::latex {

enum class AnswerKind { kExpr, kText, kSeq, kMatrix, kRel, kUnion };
enum class RelOp { kEq, kApprox, kNe, kLt, kLe, kGt, kGe, kIn };

struct Answer {
  AnswerKind kind = AnswerKind::kText;
  std::string raw;       // normalized source without spaces: the fast-path identity key
  bool percent = false;  // written with a trailing % (or "percent")
  std::optional<Expr> expr;
  std::optional<BigRational> exact;  // exact value of expr when it has one
  std::string text;                  // kText: lower-case letters and digits only
  std::string source;                // kText and the top level: the normalized text as written
  char open = 0;                     // kSeq: '(' '[' '{' (set) or 0 (bare comma list)
  char close = 0;
  bool spaced = false;        // kSeq bare: some comma was followed by a space
  std::vector<Answer> items;  // kSeq elements, kRel parts, kUnion parts, kMatrix cells row-major
  int rows = 0, cols = 0;     // kMatrix
  std::vector<RelOp> ops;     // kRel: ops[i] sits between items[i] and items[i+1]
};

struct CompareOptions {
  // Relative tolerance for numbers that are not both exact (sympy-free stand-in for N(a) == N(b)).
  double rel_tol = 1e-9;
  // SAL mode: exact values that differ may still match within rel_tol, as sympy's N(a) == N(b)
  // does.
  bool sal = false;
};

// Reduces a raw answer (possibly a sentence with $...$ or \boxed{}) to a clean LaTeX answer string.
std::string NormalizeAnswer(std::string_view raw);

// Parses a normalized answer. Never fails: what does not parse becomes kText.
Answer ParseAnswer(std::string_view normalized);

// Is `pred` an acceptable answer when `gold` is the reference? (Mostly symmetric; a gold equation
// with a non-variable left side does not reduce to its right side, after Math-Verify.)
bool AnswersMatch(const Answer& gold, const Answer& pred, const CompareOptions& options);

// The last free-standing number in running text ("18 eggs" -> "18", "1,000.99m" -> "1000.99"), if
// any.
std::optional<std::string> LastNumberInText(std::string_view text);

// For two single relations of scalar expressions: is lhs - rhs the same up to sign? (sympy's
// abs(a.lhs - a.rhs).equals(abs(b.lhs - b.rhs)) test, which ignores the relation symbols.)
bool RelationsEqualUpToSign(const Answer& a, const Answer& b);

}  // namespace ttc::experiments::latex
