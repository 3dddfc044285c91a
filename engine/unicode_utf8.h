// UTF-8 helpers for the tokenizer: validation, scanning one code point, and the lossy conversion
// that matches Rust's String::from_utf8_lossy (one U+FFFD per maximal ill-formed subpart, Unicode
// §3.9 "best practice"), which is what Hugging Face `tokenizers` uses when decoding ids to text.
// Pure functions; safe from any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace ttc::engine::utf8 {

// The result of scanning one code point at a position of a byte string.
struct Scan {
  // Bytes consumed: the sequence length when valid, else the length of the maximal ill-formed
  // subpart (>= 1).
  uint32_t length = 0;
  bool valid = false;
  // Only when !valid: the subpart is a correct prefix of a sequence that the end of the input cut
  // short, so more bytes could still complete it (what a streaming decoder must wait for).
  bool truncated = false;
  uint32_t code_point = 0;  // when valid
};

// Scans the code point starting at s[pos] (pos < s.size()).
Scan ScanOne(std::string_view s, size_t pos);

// True when s is well-formed UTF-8 (no surrogates, no overlongs, nothing above U+10FFFF).
bool IsValid(std::string_view s);

// Appends the UTF-8 encoding of a code point (cp <= 0x10FFFF).
void AppendCodePoint(std::string* out, uint32_t cp);

// Copies s to *out, replacing each maximal ill-formed subpart with U+FFFD (EF BF BD).
void AppendLossy(std::string_view s, std::string* out);
std::string ToValidLossy(std::string_view s);

// Unicode White_Space (what Rust's char::is_whitespace and Oniguruma's \s accept).
bool IsWhiteSpace(uint32_t cp);

// Python's str.isspace (what Jinja's `trim` strips): White_Space plus U+001C..U+001F.
bool IsPythonSpace(uint32_t cp);

// Python str.strip() on UTF-8 text: removes leading and trailing IsPythonSpace code points. Invalid
// bytes are kept as they are (they are not space).
std::string_view PythonStrip(std::string_view s);

}  // namespace ttc::engine::utf8
