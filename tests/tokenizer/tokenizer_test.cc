// The Llama 3 tokenizer against the Hugging Face goldens (../shared/golden/tokenizer/), decoding
// and streaming, the token/id API, long inputs, and `ttc tokenize`.
#include "engine/tokenizer.h"

#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "engine/unicode_utf8.h"
#include "tests/test_util.h"

namespace ttc::engine {
namespace {

using nlohmann::json;

std::filesystem::path Llama3Json() { return testing::SharedDir() / "assets/llama3/tokenizer.json"; }

std::vector<json> ReadJsonl(const std::filesystem::path& path) {
  std::vector<json> out;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) out.push_back(json::parse(line));
  return out;
}

class Llama3Test : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto tok = Tokenizer::Load(Llama3Json());
    ASSERT_TRUE(tok.ok()) << tok.status().ToString();
    tok_ = new Tokenizer(std::move(tok).value());
  }
  static void TearDownTestSuite() {
    delete tok_;
    tok_ = nullptr;
  }
  static std::vector<int32_t> Enc(std::string_view text, bool special = true, bool bos = false) {
    EncodeOptions o;
    o.recognize_special = special;
    o.add_bos = bos;
    auto r = tok_->Encode(text, o);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? r.value() : std::vector<int32_t>{};
  }
  static Tokenizer* tok_;
};
Tokenizer* Llama3Test::tok_ = nullptr;

TEST_F(Llama3Test, BasicFacts) {
  EXPECT_EQ(tok_->vocab_size(), 128256);
  EXPECT_EQ(tok_->bos_id(), 128000);
  EXPECT_EQ(tok_->TokenToId("<|eot_id|>"), 128009);
  EXPECT_EQ(tok_->TokenToId("<|start_header_id|>"), 128006);
  EXPECT_EQ(tok_->TokenToId("Ġthe"), 279);
  EXPECT_EQ(tok_->IdToToken(271), "ĊĊ");
  EXPECT_EQ(tok_->TokenBytes(271), "\n\n");
  EXPECT_TRUE(tok_->IsSpecial(128009));
  EXPECT_FALSE(tok_->IsSpecial(279));
  EXPECT_FALSE(tok_->IsValidId(128256));
  EXPECT_FALSE(tok_->IsValidId(-1));
  EXPECT_EQ(tok_->special_ids().size(), 256u);
  EXPECT_EQ(tok_->special_ids().front(), 128000);
  EXPECT_EQ(Enc("+"), std::vector<int32_t>{10});
  EXPECT_EQ(Enc("-"), std::vector<int32_t>{12});
  EXPECT_EQ(Enc(" ки"), std::vector<int32_t>{116624});
}

// Every record of llama3_encode.jsonl: ids with special recognition, ids_split_special without,
// decode == text.
TEST_F(Llama3Test, EncodeGoldens) {
  auto records = ReadJsonl(testing::SharedDir() / "golden/tokenizer/llama3_encode.jsonl");
  ASSERT_EQ(records.size(), 2735u);
  int mismatches = 0, split_checked = 0;
  for (const json& r : records) {
    const std::string text = r["text"];
    const auto want = r["ids"].get<std::vector<int32_t>>();
    const auto got = Enc(text);
    if (got != want && ++mismatches <= 5) {
      ADD_FAILURE() << r["source"] << ": got " << json(got).dump() << "\nwant "
                    << json(want).dump();
    }
    EXPECT_EQ(tok_->Decode(want), text) << r["source"];
    if (r.contains("ids_split_special")) {
      ++split_checked;
      EXPECT_EQ(Enc(text, /*special=*/false), r["ids_split_special"].get<std::vector<int32_t>>())
          << r["source"];
    }
  }
  EXPECT_EQ(mismatches, 0);
  EXPECT_EQ(split_checked, 8);
}

// Random texts over whitespace classes, contractions, digits, special-token text and
// letters/numbers from every Unicode version, encoded by Hugging Face
// (tests/tokenizer/make_hf_random.py): proves the PCRE2 rewrite of the split regex equal to
// Oniguruma's on the characters where they could differ.
TEST_F(Llama3Test, HfRandomTexts) {
  auto records = ReadJsonl(testing::SourceDir() / "tests/tokenizer/hf_random.jsonl");
  ASSERT_GT(records.size(), 1000u);
  int mismatches = 0;
  for (size_t i = 1; i < records.size(); ++i) {
    const json& r = records[i];
    const std::string text = r["text"];
    if ((Enc(text) != r["ids"].get<std::vector<int32_t>>() ||
         Enc(text, false) != r["ids_split_special"].get<std::vector<int32_t>>()) &&
        ++mismatches <= 5) {
      ADD_FAILURE() << "line " << i + 1 << ": " << json(text).dump();
    }
  }
  EXPECT_EQ(mismatches, 0);
}

TEST_F(Llama3Test, SpecialGoldens) {
  auto records = ReadJsonl(testing::SharedDir() / "golden/tokenizer/llama3_special.jsonl");
  ASSERT_EQ(records.size(), 14u);
  for (const json& r : records) {
    const std::string text = r["text"];
    const bool add = r["add_special_tokens"];
    const auto want = r["ids"].get<std::vector<int32_t>>();
    EXPECT_EQ(Enc(text, true, add), want) << r["note"];
    // HF decode keeps the BOS the post-processor added; the text does not have it.
    EXPECT_EQ(tok_->Decode(want), add ? "<|begin_of_text|>" + text : text) << r["note"];
  }
}

TEST_F(Llama3Test, UntrustedSpecialTextIsPlain) {
  EXPECT_EQ(Enc("<|eot_id|>"), std::vector<int32_t>{128009});
  const auto split = Enc("<|eot_id|>", /*special=*/false);
  EXPECT_GT(split.size(), 1u);
  for (int32_t id : split) EXPECT_FALSE(tok_->IsSpecial(id));
  EXPECT_EQ(tok_->Decode(split), "<|eot_id|>");
}

TEST_F(Llama3Test, DecodeSkipSpecial) {
  const auto ids = Enc("<|begin_of_text|>Hi<|eot_id|>");
  EXPECT_EQ(tok_->Decode(ids, /*skip_special=*/true), "Hi");
  EXPECT_EQ(tok_->Decode(ids), "<|begin_of_text|>Hi<|eot_id|>");
}

TEST_F(Llama3Test, DecodeRepairsBrokenUtf8LikeHf) {
  // "é" is C3 A9: the byte tokens alone are not text. HF's from_utf8_lossy gives one U+FFFD per
  // broken piece.
  const int32_t c3 = tok_->TokenToId("Ã").value();
  const int32_t a9 = tok_->TokenToId("©").value();
  EXPECT_EQ(tok_->Decode(std::vector<int32_t>{c3, a9}), "é");
  EXPECT_EQ(tok_->Decode(std::vector<int32_t>{c3}), "\xEF\xBF\xBD");
  EXPECT_EQ(tok_->Decode(std::vector<int32_t>{a9, c3}), "\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(tok_->DecodeBytes(std::vector<int32_t>{c3}), "\xC3");
  // Ids that are not tokens are skipped, as in HF.
  EXPECT_EQ(tok_->Decode(std::vector<int32_t>{-5, 9906, 999999999}), "Hello");
}

TEST_F(Llama3Test, InvalidUtf8EncodesLosslessly) {
  const std::string bad = std::string("ok \xFF\xFE caf\xC3 \xE2\x82 end\xF0\x9F\x98", 20);
  const auto ids = Enc(bad);
  EXPECT_EQ(tok_->DecodeBytes(ids), bad);
  EXPECT_TRUE(utf8::IsValid(tok_->Decode(ids)));
  EXPECT_EQ(tok_->Decode(ids), utf8::ToValidLossy(bad));
}

// Streaming: every prefix emitted is valid UTF-8 and the total equals Decode(), on emoji, CJK,
// broken bytes.
TEST_F(Llama3Test, StreamDecoderNeverSplitsACharacter) {
  for (const std::string& text :
       {std::string("👨‍👩‍👧‍👦 family, 数学题：求x的值。 é à́ 𝟘𝟙"),
        std::string("x\xF0\x9F y \xC3", 7), std::string("plain ascii <|eot_id|> end")}) {
    auto ids = Enc(text);
    // Re-encode byte-wise so that multi-byte characters are spread over several tokens.
    std::vector<int32_t> bytes;
    for (unsigned char c : tok_->DecodeBytes(ids)) {
      bytes.push_back(Enc(std::string(1, static_cast<char>(c)))[0]);
    }
    for (const auto& seq : {ids, bytes}) {
      StreamDecoder dec(*tok_);
      std::string all;
      for (int32_t id : seq) {
        std::string piece = dec.Push(id);
        EXPECT_TRUE(utf8::IsValid(piece));
        all += piece;
      }
      all += dec.Finish();
      EXPECT_EQ(all, tok_->Decode(seq));
    }
  }
  StreamDecoder dec(*tok_, /*skip_special=*/true);
  std::string all;
  for (int32_t id : Enc("<|begin_of_text|>Hi<|eot_id|>")) all += dec.Push(id);
  EXPECT_EQ(all + dec.Finish(), "Hi");
}

TEST_F(Llama3Test, StreamDecoderHoldsBackIncompleteCharacter) {
  StreamDecoder dec(*tok_);
  const int32_t f0 = tok_->TokenToId("ð").value();  // F0: first byte of a 4-byte character
  EXPECT_EQ(dec.Push(f0), "");
  EXPECT_EQ(dec.pending_bytes(), 1u);
  EXPECT_EQ(dec.Push(tok_->TokenToId("Ł").value()), "");   // 9F
  EXPECT_EQ(dec.Push(tok_->TokenToId("ĺ").value()), "");   // 98
  EXPECT_EQ(dec.Push(tok_->TokenToId("Ģ").value()), "😀");  // 80
  EXPECT_EQ(dec.Push(f0), "");
  EXPECT_EQ(dec.Push(9906),
            "\xEF\xBF\xBDHello");  // 'H' cannot continue F0: replaced now, not later
  EXPECT_EQ(dec.Push(f0), "");
  EXPECT_EQ(dec.Finish(), "\xEF\xBF\xBD");
}

// Random round trips over a mix of scripts, whitespace and special-token text.
TEST_F(Llama3Test, RandomRoundTrips) {
  const std::vector<std::string> atoms = {
      "a",      "Z",          " ",  "  ", "\n",     "\r\n",   "\t",
      "1",      "23",         "é",  "ß",  "数",     "😀",      "'s",
      "'LL",    "<|eot_id|>", "<|", "|>", "$",      "\\frac", "\u00a0",
      "\u2028", "\u180e",     "ſ",  "İ",  "\u0301", "\x01",   std::string(1, '\0')};
  std::mt19937 rng(7);
  for (int iter = 0; iter < 2000; ++iter) {
    std::string text;
    const int n = rng() % 24;
    for (int i = 0; i < n; ++i) text += atoms[rng() % atoms.size()];
    for (bool special : {true, false}) {
      const auto ids = Enc(text, special);
      ASSERT_EQ(tok_->Decode(ids), text) << json(text).dump();
      for (int32_t id : ids) ASSERT_TRUE(tok_->IsValidId(id));
    }
  }
}

TEST_F(Llama3Test, LongInputs) {
  constexpr size_t kMiB = 1 << 20;
  // 10 MB of digits: \p{N}{1,3} cuts them in threes, each a vocabulary token.
  const std::string digits(10 * kMiB + 1, '7');
  const auto d = Enc(digits);
  const int32_t d3 = Enc("777")[0], d2 = Enc("77")[0];
  ASSERT_EQ(d.size(), (digits.size() + 2) / 3);
  EXPECT_EQ(d.front(), d3);
  EXPECT_EQ(d.back(), digits.size() % 3 == 2 ? d2 : (digits.size() % 3 == 1 ? Enc("7")[0] : d3));
  // 10 MB of one letter: one 10 MB pre-token, merged by the heap path.
  const std::string letters(10 * kMiB, 'a');
  const auto l = Enc(letters);
  EXPECT_LT(l.size(), letters.size() / 4);
  EXPECT_EQ(tok_->Decode(l), letters);
  // 4 MB of spaces then a letter: the regex backtracks over the whole run once, not once per
  // character.
  const std::string spaces = std::string(4 * kMiB, ' ') + "x";
  EXPECT_EQ(tok_->Decode(Enc(spaces)), spaces);
  // 2 MB of special-token near misses.
  std::string near;
  while (near.size() < 2 * kMiB) near += "<|eot_id|<|";
  EXPECT_EQ(tok_->Decode(Enc(near)), near);
}

TEST_F(Llama3Test, ThreadsShareOneTokenizer) {
  auto records = ReadJsonl(testing::SharedDir() / "golden/tokenizer/llama3_encode.jsonl");
  std::vector<std::thread> threads;
  std::atomic<int> bad{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (size_t i = t; i < records.size(); i += 4) {
        if (tok_->Encode(records[i]["text"].get<std::string>()).value() !=
            records[i]["ids"].get<std::vector<int32_t>>())
          ++bad;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(bad.load(), 0);
}

// `ttc tokenize`.
TEST_F(Llama3Test, CliText) {
  auto r = testing::RunTtc("tokenize --tokenizer " + Llama3Json().string() +
                           " --text 'Hello world' --json");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(json::parse(r.output)["ids"], json({9906, 1917}));
  r = testing::RunTtc("tokenize --tokenizer " + Llama3Json().string() +
                      " --text '<|eot_id|>' --special");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output, "128009\n");
  r = testing::RunTtc("tokenize --tokenizer " + Llama3Json().string() +
                      " --text '9906 1917' --decode");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output, "Hello world\n");
}

TEST_F(Llama3Test, CliJsonl) {
  testing::TempDir dir;
  {
    std::ofstream f(dir / "in.jsonl");
    f << R"({"text": "Hello world"})"
      << "\n"
      << R"({"text": "<|eot_id|>"})"
      << "\n"
      << R"({"text": ""})"
      << "\n";
  }
  auto r = testing::RunTtc("tokenize --tokenizer " + Llama3Json().string() + " --jsonl " +
                           (dir / "in.jsonl").string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output, "{\"ids\":[9906,1917]}\n{\"ids\":[27,91,68,354,851,91,29]}\n{\"ids\":[]}\n");
  {
    std::ofstream f(dir / "ids.jsonl");
    f << R"({"ids": [9906, 1917]})"
      << "\n"
      << R"({"ids": [128009]})"
      << "\n";
  }
  r = testing::RunTtc("tokenize --tokenizer " + Llama3Json().string() + " --decode --jsonl " +
                      (dir / "ids.jsonl").string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output, "{\"text\":\"Hello world\"}\n{\"text\":\"<|eot_id|>\"}\n");
  {
    std::ofstream f(dir / "bad.jsonl");
    f << R"({"text": "fine"})"
      << "\n"
      << R"({"txt": "no"})"
      << "\n";
  }
  r = testing::RunTtc("tokenize --tokenizer " + Llama3Json().string() + " --jsonl " +
                      (dir / "bad.jsonl").string());
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("line 2"), std::string::npos) << r.output;
  {
    std::ofstream f(dir / "badids.jsonl");
    f << R"({"ids": [1, 2]})"
      << "\n"
      << R"({"ids": [3]})"
      << "\n"
      << R"({"ids": [128256]})"
      << "\n";
  }
  r = testing::RunTtc("tokenize --tokenizer " + Llama3Json().string() + " --decode --jsonl " +
                      (dir / "badids.jsonl").string());
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("line 3"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("128256"), std::string::npos) << r.output;
}

TEST_F(Llama3Test, CliUsageErrors) {
  auto r = testing::RunTtc("tokenize --text hi");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  r = testing::RunTtc("tokenize --tokenizer " + Llama3Json().string());
  EXPECT_EQ(r.exit_code, 2) << r.output;
  r = testing::RunTtc("tokenize --tokenizer /nonexistent/tokenizer.json --text hi");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("/nonexistent/tokenizer.json"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace ttc::engine
