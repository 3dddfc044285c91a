// Untrusted input for the tokenizer: malformed, truncated and unsupported tokenizer.json files,
// invalid UTF-8, absurdly long inputs, random bytes. Label "robust": tools/test.sh also runs this
// under ASan/UBSan. Uses small tokenizers built here (GPT-2 style byte-level BPE), so it stays fast
// under the sanitizers.
#include <gtest/gtest.h>

#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "engine/tokenizer.h"
#include "engine/tokenizer_bpe.h"
#include "engine/unicode_utf8.h"
#include "tests/test_util.h"

namespace ttc::engine {
namespace {

using nlohmann::json;

#if defined(__SANITIZE_ADDRESS__)
constexpr size_t kLongScale = 1;  // megabytes for the long-input tests under ASan
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr size_t kLongScale = 1;
#else
constexpr size_t kLongScale = 4;
#endif
#else
constexpr size_t kLongScale = 4;
#endif

// GPT-2's byte -> character map, written independently of the implementation.
std::string ByteChar(unsigned char b) {
  int n = 0;
  for (int x = 0; x < 256; ++x) {
    const bool printable = (x >= '!' && x <= '~') || (x >= 0xA1 && x <= 0xAC) || (x >= 0xAE);
    if (x == b) {
      std::string out;
      utf8::AppendCodePoint(&out, printable ? x : 256 + n);
      return out;
    }
    if (!printable) ++n;
  }
  return "";
}

// A small GPT-2 style tokenizer: the 256 byte tokens (id = byte), then merges for " the", "aaaa"
// and "<|".
json TinyGpt2(bool pair_merges = false) {
  json vocab = json::object();
  for (int b = 0; b < 256; ++b) vocab[ByteChar(static_cast<unsigned char>(b))] = b;
  const std::string sp = ByteChar(' ');
  const std::vector<std::pair<std::string, std::string>> merges = {
      {sp, "t"}, {"h", "e"}, {sp + "t", "he"}, {"a", "a"}, {"aa", "aa"}, {"<", "|"}};
  int next = 256;
  json m = json::array();
  for (const auto& [a, b] : merges) {
    if (!vocab.contains(a + b)) vocab[a + b] = next++;
    if (pair_merges) {
      m.push_back(json::array({a, b}));
    } else {
      m.push_back(a + " " + b);
    }
  }
  json j = {
      {"version", "1.0"},
      {"truncation", nullptr},
      {"padding", nullptr},
      {"added_tokens", json::array({{{"id", 262},
                                     {"content", "<|endoftext|>"},
                                     {"special", true},
                                     {"single_word", false},
                                     {"lstrip", false},
                                     {"rstrip", false},
                                     {"normalized", false}}})},
      {"normalizer", nullptr},
      {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}}},
      {"post_processor", {{"type", "ByteLevel"}, {"trim_offsets", false}}},
      {"decoder", {{"type", "ByteLevel"}}},
      {"model",
       {{"type", "BPE"},
        {"dropout", nullptr},
        {"unk_token", nullptr},
        {"vocab", vocab},
        {"merges", m}}}};
  return j;
}

Tokenizer MustLoad(const json& j) {
  auto t = Tokenizer::FromJson(j.dump());
  EXPECT_TRUE(t.ok()) << t.status().ToString();
  return std::move(t).value();
}

std::vector<int32_t> Enc(const Tokenizer& t, std::string_view s, bool special = true) {
  EncodeOptions o;
  o.recognize_special = special;
  auto r = t.Encode(s, o);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? r.value() : std::vector<int32_t>{};
}

TEST(TinyTokenizer, Gpt2StyleEncodesAndDecodes) {
  for (bool pairs : {false, true}) {
    Tokenizer t = MustLoad(TinyGpt2(pairs));
    const int32_t the = t.TokenToId(ByteChar(' ') + "the").value();
    const int32_t he = t.TokenToId("he").value();
    EXPECT_EQ(Enc(t, "the the"), (std::vector<int32_t>{'t', he, the}));
    EXPECT_EQ(Enc(t, "aaaaa"), (std::vector<int32_t>{t.TokenToId("aaaa").value(), 'a'}));
    EXPECT_EQ(Enc(t, "x<|endoftext|>y"), (std::vector<int32_t>{'x', 262, 'y'}));
    EXPECT_EQ(Enc(t, "<|endoftext|>", /*special=*/false).front(), t.TokenToId("<|").value());
    EXPECT_EQ(t.Decode(Enc(t, "the <|endoftext|> the")), "the <|endoftext|> the");
    EXPECT_EQ(t.Decode(Enc(t, "the <|endoftext|> the"), /*skip_special=*/true), "the  the");
    EXPECT_EQ(t.vocab_size(), 263);
    EXPECT_FALSE(t.bos_id().has_value());
  }
}

TEST(TinyTokenizer, PrefixSpaceLlamaSplitAndTemplate) {
  json j = TinyGpt2();
  j["pre_tokenizer"]["add_prefix_space"] = true;
  Tokenizer t = MustLoad(j);
  EXPECT_EQ(Enc(t, "the"), std::vector<int32_t>{t.TokenToId(ByteChar(' ') + "the").value()});

  json l = TinyGpt2();
  l["pre_tokenizer"] = {
      {"type", "Sequence"},
      {"pretokenizers",
       json::array(
           {{{"type", "Split"},
             {"pattern",
              {{"Regex",
                R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)"}}},
             {"behavior", "Isolated"},
             {"invert", false}},
            {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}})}};
  l["post_processor"] = {
      {"type", "TemplateProcessing"},
      {"single", json::array({{{"SpecialToken", {{"id", "<|endoftext|>"}, {"type_id", 0}}}},
                              {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}})},
      {"special_tokens",
       {{"<|endoftext|>",
         {{"id", "<|endoftext|>"}, {"ids", {262}}, {"tokens", {"<|endoftext|>"}}}}}}};
  Tokenizer lt = MustLoad(l);
  EXPECT_EQ(lt.bos_id(), 262);
  EncodeOptions o;
  o.add_bos = true;
  // \p{N}{1,3} splits 12345 into 123|45.
  EXPECT_EQ(lt.Encode("12345", o).value(), (std::vector<int32_t>{262, '1', '2', '3', '4', '5'}));
  EXPECT_EQ(lt.Encode("", o).value(), std::vector<int32_t>{262});
  // U+180E is not White_Space (Oniguruma, HF); PCRE2's own \s would take it.
  EXPECT_EQ(lt.Decode(lt.Encode("a\u180e b").value()), "a\u180e b");
}

TEST(TinyTokenizer, AddedTokenStripFlags) {
  json j = TinyGpt2();
  j["added_tokens"][0]["lstrip"] = true;
  j["added_tokens"][0]["rstrip"] = true;
  Tokenizer t = MustLoad(j);
  EXPECT_EQ(Enc(t, "x  <|endoftext|>  y"), (std::vector<int32_t>{'x', 262, 'y'}));
}

struct BadCase {
  const char* name;
  std::function<void(json&)> mutate;
  StatusCode code;
  const char* message_part;
};

TEST(TokenizerJson, MalformedAndUnsupportedGiveClearErrors) {
  const std::vector<BadCase> cases = {
      {"root array", [](json& j) { j = json::array(); }, StatusCode::kCorrupt, "JSON object"},
      {"no model", [](json& j) { j.erase("model"); }, StatusCode::kCorrupt, "model"},
      {"vocab array", [](json& j) { j["model"]["vocab"] = json::array(); }, StatusCode::kCorrupt,
       "model.vocab"},
      {"id string", [](json& j) { j["model"]["vocab"]["a"] = "x"; }, StatusCode::kCorrupt,
       "model.vocab"},
      {"id negative", [](json& j) { j["model"]["vocab"]["zz"] = -3; }, StatusCode::kCorrupt,
       "out of range"},
      {"id huge", [](json& j) { j["model"]["vocab"]["zz"] = 1LL << 40; }, StatusCode::kCorrupt,
       "out of range"},
      {"id twice", [](json& j) { j["model"]["vocab"]["zz"] = 5; }, StatusCode::kCorrupt, "id 5"},
      {"merges missing", [](json& j) { j["model"].erase("merges"); }, StatusCode::kCorrupt,
       "model.merges"},
      {"merge no space", [](json& j) { j["model"]["merges"][0] = "ab"; }, StatusCode::kCorrupt,
       "model.merges[0]"},
      {"merge unknown", [](json& j) { j["model"]["merges"][1] = "h zzz"; }, StatusCode::kCorrupt,
       "zzz"},
      {"merge number", [](json& j) { j["model"]["merges"][2] = 7; }, StatusCode::kCorrupt,
       "model.merges[2]"},
      {"added no content", [](json& j) { j["added_tokens"][0].erase("content"); },
       StatusCode::kCorrupt, "added_tokens[0].content"},
      {"added bad id", [](json& j) { j["added_tokens"][0]["id"] = "262"; }, StatusCode::kCorrupt,
       "added_tokens[0].id"},
      {"added clash", [](json& j) { j["added_tokens"][0]["id"] = 65; }, StatusCode::kCorrupt,
       "added_tokens[0]"},
      {"added id gap", [](json& j) { j["added_tokens"][0]["id"] = 300; }, StatusCode::kCorrupt,
       "Hugging Face assigns it id 262"},
      {"single_word", [](json& j) { j["added_tokens"][0]["single_word"] = true; },
       StatusCode::kUnimplemented, "single_word"},
      {"wordpiece", [](json& j) { j["model"]["type"] = "WordPiece"; }, StatusCode::kUnimplemented,
       "WordPiece"},
      {"unigram", [](json& j) { j["model"]["type"] = "Unigram"; }, StatusCode::kUnimplemented,
       "Unigram"},
      {"dropout", [](json& j) { j["model"]["dropout"] = 0.1; }, StatusCode::kUnimplemented,
       "dropout"},
      {"byte_fallback", [](json& j) { j["model"]["byte_fallback"] = true; },
       StatusCode::kUnimplemented, "byte_fallback"},
      {"suffix", [](json& j) { j["model"]["end_of_word_suffix"] = "</w>"; },
       StatusCode::kUnimplemented, "end_of_word_suffix"},
      {"normalizer",
       [](json& j) {
         j["normalizer"] = {{"type", "NFC"}};
       },
       StatusCode::kUnimplemented, "NFC"},
      {"metaspace",
       [](json& j) {
         j["pre_tokenizer"] = {{"type", "Metaspace"}};
       },
       StatusCode::kUnimplemented, "Metaspace"},
      {"no pre_tokenizer", [](json& j) { j["pre_tokenizer"] = nullptr; },
       StatusCode::kUnimplemented, "pre_tokenizer"},
      {"split only",
       [](json& j) {
         j["pre_tokenizer"] = {
             {"type", "Split"}, {"pattern", {{"Regex", "a"}}}, {"behavior", "Isolated"}};
       },
       StatusCode::kUnimplemented, "ByteLevel"},
      {"split removed",
       [](json& j) {
         j["pre_tokenizer"] = {
             {"type", "Sequence"},
             {"pretokenizers",
              json::array(
                  {{{"type", "Split"}, {"pattern", {{"Regex", "a"}}}, {"behavior", "Removed"}},
                   {{"type", "ByteLevel"}}})}};
       },
       StatusCode::kUnimplemented, "Removed"},
      {"bad regex",
       [](json& j) {
         j["pre_tokenizer"] = {
             {"type", "Sequence"},
             {"pretokenizers", json::array({{{"type", "Split"},
                                             {"pattern", {{"Regex", "(unclosed"}}},
                                             {"behavior", "Isolated"}},
                                            {{"type", "ByteLevel"}}})}};
       },
       StatusCode::kCorrupt, "pre_tokenizer.pretokenizers[0].pattern"},
      {"bert post",
       [](json& j) {
         j["post_processor"] = {{"type", "BertProcessing"}};
       },
       StatusCode::kUnimplemented, "BertProcessing"},
      {"template unknown special",
       [](json& j) {
         j["post_processor"] = {{"type", "TemplateProcessing"},
                                {"single", json::array({{{"SpecialToken", {{"id", "<s>"}}}},
                                                        {{"Sequence", {{"id", "A"}}}}})},
                                {"special_tokens", json::object()}};
       },
       StatusCode::kCorrupt, "<s>"},
      {"wordpiece decoder",
       [](json& j) {
         j["decoder"] = {{"type", "WordPiece"}};
       },
       StatusCode::kUnimplemented, "WordPiece"},
      {"no decoder", [](json& j) { j["decoder"] = nullptr; }, StatusCode::kUnimplemented,
       "decoder"},
      {"truncation",
       [](json& j) {
         j["truncation"] = {{"max_length", 5}};
       },
       StatusCode::kUnimplemented, "truncation"},
  };
  for (const BadCase& c : cases) {
    json j = TinyGpt2();
    c.mutate(j);
    auto t = Tokenizer::FromJson(j.dump());
    ASSERT_FALSE(t.ok()) << c.name;
    EXPECT_EQ(t.status().code(), c.code) << c.name << ": " << t.status().ToString();
    EXPECT_NE(t.status().message().find(c.message_part), std::string::npos)
        << c.name << ": " << t.status().ToString();
  }
}

TEST(TokenizerJson, TruncatedAtEveryFewBytes) {
  const std::string full = TinyGpt2().dump();
  for (size_t cut = 0; cut < full.size(); cut += 13) {
    auto t = Tokenizer::FromJson(std::string_view(full).substr(0, cut));
    ASSERT_FALSE(t.ok()) << cut;
    EXPECT_EQ(t.status().code(), StatusCode::kCorrupt) << t.status().ToString();
  }
}

TEST(TokenizerJson, RandomByteFlipsNeverCrash) {
  const std::string full = TinyGpt2().dump();
  std::mt19937 rng(11);
  int loaded = 0;
  for (int iter = 0; iter < 300; ++iter) {
    std::string s = full;
    for (int k = 0; k < 3; ++k) s[rng() % s.size()] = static_cast<char>(rng());
    auto t = Tokenizer::FromJson(s);
    if (t.ok()) {
      ++loaded;
      auto ids = t->Encode("the aaaa <|endoftext|> x");
      if (ids.ok()) {
        for (int32_t id : *ids) EXPECT_TRUE(t->IsValidId(id));
      }
    } else {
      EXPECT_FALSE(t.status().message().empty());
    }
  }
  SUCCEED() << loaded << " mutated files still loaded";
}

TEST(TokenizerJson, FileErrorsNameThePath) {
  auto t = Tokenizer::Load("/nonexistent/dir/tokenizer.json");
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), StatusCode::kNotFound);
  EXPECT_NE(t.status().message().find("/nonexistent/dir/tokenizer.json"), std::string::npos);
  testing::TempDir dir;
  t = Tokenizer::Load(dir.path());
  ASSERT_FALSE(t.ok());
  {
    std::ofstream f(dir / "tokenizer.json");
    f << TinyGpt2().dump().substr(0, 100);
  }
  t = Tokenizer::Load(dir / "tokenizer.json");
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find((dir / "tokenizer.json").string()), std::string::npos);
  EXPECT_NE(t.status().message().find("byte"), std::string::npos) << t.status().ToString();
}

TEST(TinyTokenizer, InvalidUtf8AndRandomBytesRoundTrip) {
  Tokenizer t = MustLoad(TinyGpt2());
  std::mt19937 rng(3);
  for (int iter = 0; iter < 2000; ++iter) {
    std::string s(rng() % 40, '\0');
    for (char& c : s)
      c = static_cast<char>(rng() % 4 == 0 ? rng() : "a th<|>\xC3\xA9\xF0"[rng() % 10]);
    const auto ids = Enc(t, s);
    ASSERT_EQ(t.DecodeBytes(ids), s);
    const std::string text = t.Decode(ids);
    ASSERT_TRUE(utf8::IsValid(text));
    ASSERT_EQ(text, utf8::ToValidLossy(s));
  }
}

TEST(TinyTokenizer, LongInputs) {
  Tokenizer t = MustLoad(TinyGpt2());
  const size_t n = kLongScale << 20;
  const std::string a(n, 'a');
  const auto ids = Enc(t, a);
  ASSERT_EQ(ids.size(), n / 4);
  for (int32_t id : ids) ASSERT_EQ(id, t.TokenToId("aaaa").value());
  const std::string digits(n, '9');
  EXPECT_EQ(Enc(t, digits).size(), n);  // no merges for digits: one id per byte
  const std::string spaces = std::string(n, ' ') + "x";
  EXPECT_EQ(t.Decode(Enc(t, spaces)), spaces);
  std::string invalid(n, '\xFF');
  EXPECT_EQ(Enc(t, invalid).size(), n);
}

// The three merge loops agree on random merge tables and inputs (the short one is used up to 128
// symbols).
TEST(Bpe, QuadraticAndHeapAgree) {
  std::mt19937 rng(5);
  for (int table = 0; table < 20; ++table) {
    std::vector<std::pair<uint64_t, internal::PairMap::Value>> entries;
    int32_t next = 8;
    for (int r = 0; r < 40; ++r) {
      const int32_t a = rng() % next, b = rng() % next;
      // Odd tables number the merges backwards: merged symbols then form pairs of lower rank (the
      // fallback path).
      entries.push_back({internal::PairMap::Key(a, b), {table % 2 ? 40 - r : r, next++}});
    }
    internal::PairMap merges;
    merges.Build(entries);
    for (int iter = 0; iter < 50; ++iter) {
      std::vector<int32_t> s(rng() % 300);
      for (int32_t& x : s) x = rng() % 8;
      auto q = s, h = s, b = s;
      internal::BpeMergeQuadratic(merges, &q);
      internal::BpeMergeHeap(merges, &h);
      internal::BpeMergeBuckets(merges, &b);
      ASSERT_EQ(q, h);
      ASSERT_EQ(q, b);
    }
  }
}

TEST(Utf8, LossyMatchesUnicodeMaximalSubparts) {
  // Unicode 15 §3.9 Table 3-8 example: 61 F1 80 80 E1 80 C2 62 80 63 80 BF 64 -> a FFFD FFFD FFFD b
  // FFFD c FFFD FFFD d
  const std::string in("\x61\xF1\x80\x80\xE1\x80\xC2\x62\x80\x63\x80\xBF\x64", 13);
  EXPECT_EQ(utf8::ToValidLossy(in), "a\uFFFD\uFFFD\uFFFDb\uFFFDc\uFFFD\uFFFDd");
  EXPECT_FALSE(utf8::IsValid("\xED\xA0\x80"));  // surrogate
  EXPECT_FALSE(utf8::IsValid("\xC0\xAF"));      // overlong
  EXPECT_TRUE(utf8::IsValid("\xF4\x8F\xBF\xBF"));
  EXPECT_FALSE(utf8::IsValid("\xF4\x90\x80\x80"));
  EXPECT_EQ(utf8::PythonStrip("\x1c\u3000 x y\n\u2029"), "x y");
  EXPECT_EQ(utf8::PythonStrip(" \xFF "), "\xFF");
}

}  // namespace
}  // namespace ttc::engine
