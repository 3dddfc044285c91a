// UTF-8 scanning per Unicode Table 3-7 (well-formed byte sequences).
#include "engine/unicode_utf8.h"

namespace ttc::engine::utf8 {

Scan ScanOne(std::string_view s, size_t pos) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data()) + pos;
  const size_t avail = s.size() - pos;
  const unsigned char b0 = p[0];
  if (b0 < 0x80) return {1, true, false, b0};
  uint32_t need;
  unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  uint32_t cp;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    need = 1;
    cp = b0 & 0x1F;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    need = 2;
    cp = b0 & 0x0F;
    if (b0 == 0xE0) lo = 0xA0;  // no overlongs
    if (b0 == 0xED) hi = 0x9F;  // no surrogates
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    need = 3;
    cp = b0 & 0x07;
    if (b0 == 0xF0) lo = 0x90;  // no overlongs
    if (b0 == 0xF4) hi = 0x8F;  // nothing above U+10FFFF
  } else {
    return {1, false, false, 0};  // 80..C1, F5..FF never start a sequence
  }
  uint32_t i = 1;
  for (; i <= need; ++i) {
    if (i >= avail) return {i, false, true, 0};
    const unsigned char b = p[i];
    const unsigned char l = (i == 1) ? lo : 0x80;
    const unsigned char h = (i == 1) ? hi : 0xBF;
    if (b < l || b > h) return {i, false, false, 0};
    cp = (cp << 6) | (b & 0x3F);
  }
  return {need + 1, true, false, cp};
}

bool IsValid(std::string_view s) {
  size_t i = 0;
  const size_t n = s.size();
  while (i < n) {
    // Fast path over ASCII, 8 bytes at a time.
    while (i + 8 <= n) {
      uint64_t v;
      __builtin_memcpy(&v, s.data() + i, 8);
      if (v & 0x8080808080808080ull) break;
      i += 8;
    }
    if (i >= n) break;
    if (static_cast<unsigned char>(s[i]) < 0x80) {
      ++i;
      continue;
    }
    Scan sc = ScanOne(s, i);
    if (!sc.valid) return false;
    i += sc.length;
  }
  return true;
}

void AppendCodePoint(std::string* out, uint32_t cp) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

void AppendLossy(std::string_view s, std::string* out) {
  size_t i = 0;
  size_t run = 0;  // start of the current run of valid bytes, copied in one append
  while (i < s.size()) {
    if (static_cast<unsigned char>(s[i]) < 0x80) {
      ++i;
      continue;
    }
    Scan sc = ScanOne(s, i);
    if (sc.valid) {
      i += sc.length;
      continue;
    }
    out->append(s.data() + run, i - run);
    out->append("\xEF\xBF\xBD");
    i += sc.length;
    run = i;
  }
  out->append(s.data() + run, s.size() - run);
}

std::string ToValidLossy(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  AppendLossy(s, &out);
  return out;
}

bool IsWhiteSpace(uint32_t cp) {
  if (cp <= 0x20) return cp == 0x20 || (cp >= 0x09 && cp <= 0x0D);
  if (cp < 0x85) return false;
  return cp == 0x85 || cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) ||
         cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

bool IsPythonSpace(uint32_t cp) { return IsWhiteSpace(cp) || (cp >= 0x1C && cp <= 0x1F); }

std::string_view PythonStrip(std::string_view s) {
  size_t begin = 0;
  while (begin < s.size()) {
    Scan sc = ScanOne(s, begin);
    if (!sc.valid || !IsPythonSpace(sc.code_point)) break;
    begin += sc.length;
  }
  // Walk forward to find the end of the last non-space code point (UTF-8 is not safely scannable
  // backwards when it may be invalid).
  size_t end = begin;
  size_t i = begin;
  while (i < s.size()) {
    Scan sc = ScanOne(s, i);
    i += sc.length;
    if (!sc.valid || !IsPythonSpace(sc.code_point)) end = i;
  }
  return s.substr(begin, end - begin);
}

}  // namespace ttc::engine::utf8
