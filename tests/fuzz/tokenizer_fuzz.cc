// libFuzzer target for the tokenizer. The first input byte picks the mode:
//   0: the rest is a tokenizer.json: loading must fail cleanly or give a tokenizer that encodes and
//   decodes. else: the rest is text: for a small GPT-2 style tokenizer built here and, when
//   ../shared is found, the Llama 3 tokenizer, with and without special-token recognition:
//   DecodeBytes(Encode(x)) == x, Decode is valid UTF-8 (and == x when x is valid UTF-8), every id
//   is valid, and streaming decode equals Decode.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "engine/tokenizer.h"
#include "engine/unicode_utf8.h"

namespace {

using ttc::engine::EncodeOptions;
using ttc::engine::StreamDecoder;
using ttc::engine::Tokenizer;

std::string ByteChar(int b) {
  int n = 0;
  for (int x = 0; x < 256; ++x) {
    const bool printable = (x >= '!' && x <= '~') || (x >= 0xA1 && x <= 0xAC) || (x >= 0xAE);
    if (x == b) {
      std::string out;
      ttc::engine::utf8::AppendCodePoint(&out, printable ? x : 256 + n);
      return out;
    }
    if (!printable) ++n;
  }
  return "";
}

std::string TinyJson() {
  nlohmann::json vocab = nlohmann::json::object();
  for (int b = 0; b < 256; ++b) vocab[ByteChar(b)] = b;
  const std::string sp = ByteChar(' ');
  vocab[sp + "t"] = 256;
  vocab["he"] = 257;
  vocab[sp + "the"] = 258;
  vocab["aa"] = 259;
  nlohmann::json j = {
      {"added_tokens",
       nlohmann::json::array({{{"id", 260}, {"content", "<|endoftext|>"}, {"special", true}}})},
      {"normalizer", nullptr},
      {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}}},
      {"post_processor", nullptr},
      {"decoder", {{"type", "ByteLevel"}}},
      {"model",
       {{"type", "BPE"}, {"vocab", vocab}, {"merges", {sp + " t", "h e", sp + "t he", "a a"}}}}};
  return j.dump();
}

struct Tokenizers {
  std::unique_ptr<Tokenizer> tiny, llama;
  Tokenizers() {
    tiny = std::make_unique<Tokenizer>(Tokenizer::FromJson(TinyJson()).value());
    // This file lives in <repo>/tests/fuzz/; the shared fixtures sit beside the repository.
    const auto path = std::filesystem::path(__FILE__).parent_path() /
                      "../../../shared/assets/llama3/tokenizer.json";
    if (auto t = Tokenizer::Load(path); t.ok())
      llama = std::make_unique<Tokenizer>(std::move(t).value());
  }
};

const Tokenizers* g_tokenizers = nullptr;

void Check(bool ok) {
  if (!ok) __builtin_trap();
}

void RoundTrip(const Tokenizer& tok, std::string_view text) {
  const bool valid = ttc::engine::utf8::IsValid(text);
  for (bool special : {true, false}) {
    EncodeOptions o;
    o.recognize_special = special;
    auto ids = tok.Encode(text, o);
    Check(ids.ok());
    for (int32_t id : *ids) Check(tok.IsValidId(id));
    Check(tok.DecodeBytes(*ids) == text);
    const std::string decoded = tok.Decode(*ids);
    Check(ttc::engine::utf8::IsValid(decoded));
    if (valid) Check(decoded == text);
    StreamDecoder stream(tok);
    std::string streamed;
    for (int32_t id : *ids) {
      std::string piece = stream.Push(id);
      Check(ttc::engine::utf8::IsValid(piece));
      streamed += piece;
    }
    streamed += stream.Finish();
    Check(streamed == decoded);
  }
}

}  // namespace

// Loading the 9 MB Llama 3 file takes seconds under ASan: do it here, outside the per-input
// timeout.
extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  static Tokenizers loaded;
  g_tokenizers = &loaded;
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (g_tokenizers == nullptr) LLVMFuzzerInitialize(nullptr, nullptr);
  const Tokenizers& tokenizers = *g_tokenizers;
  if (size == 0) return 0;
  const std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (data[0] == 0) {
    auto tok = Tokenizer::FromJson(rest);
    if (tok.ok()) {
      auto ids = tok->Encode("the aa <|endoftext|> \xC3\xA9\xFF");
      if (ids.ok()) {
        for (int32_t id : *ids) Check(tok->IsValidId(id));
        (void)tok->Decode(*ids);
      }
    } else {
      Check(!tok.status().message().empty());
    }
    return 0;
  }
  RoundTrip(*tokenizers.tiny, rest);
  if (tokenizers.llama) RoundTrip(*tokenizers.llama, rest);
  return 0;
}
