// Tokenizer: Hugging Face `tokenizer.json` byte-level BPE (Llama 3, GPT-2 style), byte-exact with
// the Hugging Face `tokenizers` library on the goldens in ../shared/golden/tokenizer/. Supported
// components: model BPE (vocab, merges as "a b" strings or [a, b] pairs, ignore_merges, unk_token),
// normalizer null, pre-tokenizers Split (regex, behavior Isolated) and ByteLevel (with or without
// its GPT-2 regex, add_prefix_space), possibly in a Sequence; added/special tokens (lstrip/rstrip
// honoured); post-processors ByteLevel and TemplateProcessing (the BOS of Llama 3); decoder
// ByteLevel. Anything else is refused at load with an error naming the component.
//
// Split regexes run on PCRE2 (UTF + UCP, JIT), with \s and \S rewritten to Unicode White_Space so
// that they mean what they mean in Oniguruma, the engine Hugging Face uses.
//
// Invalid UTF-8 input (which the Python library cannot even receive) is encoded losslessly: each
// maximal ill-formed subpart becomes its own pre-token, so DecodeBytes(Encode(x)) == x for every
// byte string x; Decode() then gives the Hugging Face lossy form (U+FFFD per ill-formed subpart)
// and always returns valid UTF-8.
//
// Thread safety: a loaded Tokenizer is immutable; every const method may be called from many
// threads at once (per-thread scratch state and caches live in thread_local storage). Copies share
// the loaded tables. StreamDecoder is a small per-stream object: one thread at a time.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace ttc::engine {

struct EncodeOptions {
  // Match special-token text (e.g. "<|eot_id|>") as the special token's single id. Set false for
  // untrusted user text: such strings are then split and BPE-encoded like any other text (HF
  // `encode_special_tokens = True`). Non-special added tokens are matched either way, as in Hugging
  // Face.
  bool recognize_special = true;
  // Apply the post-processor's single-sequence template (HF add_special_tokens=True): for Llama 3
  // this prepends
  // <|begin_of_text|>. A tokenizer without a template adds nothing.
  bool add_bos = false;
};

class Tokenizer {
 public:
  // Reads and validates a tokenizer.json file. Errors: kNotFound / kIo for the file, kCorrupt for
  // malformed JSON or inconsistent tables (naming the JSON path), kUnimplemented for unsupported
  // components (naming them).
  static Result<Tokenizer> Load(const std::filesystem::path& tokenizer_json);
  // The same from the JSON text itself.
  static Result<Tokenizer> FromJson(std::string_view json_text);

  // Text to ids. Fails only if the regex engine gives up on a pathological input (resource limit),
  // with an error saying where; any byte string is otherwise encodable.
  Result<std::vector<int32_t>> Encode(std::string_view text,
                                      const EncodeOptions& options = {}) const;

  // Ids to text, as Hugging Face `decode(ids, skip_special_tokens=skip_special)`: byte-level
  // decoded, then invalid UTF-8 replaced by U+FFFD. Ids outside [0, vocab_size()) or without a
  // token are skipped (as in HF); check them with IsValidId first when they come from outside.
  std::string Decode(std::span<const int32_t> ids, bool skip_special = false) const;
  // The raw bytes, without the UTF-8 repair: DecodeBytes(Encode(x)) == x for any x.
  std::string DecodeBytes(std::span<const int32_t> ids, bool skip_special = false) const;
  // The raw bytes of one token (empty for an invalid id).
  std::string_view TokenBytes(int32_t id) const;

  // Number of ids: model vocabulary plus added tokens (128256 for Llama 3).
  int32_t vocab_size() const;
  bool IsValidId(int32_t id) const;
  // Whether the id is a special added token (skipped by skip_special).
  bool IsSpecial(int32_t id) const;
  // All special ids, ascending.
  const std::vector<int32_t>& special_ids() const;
  // The token string as written in tokenizer.json (byte-level form for model tokens, e.g. "Ġthe";
  // the content for added tokens, e.g. "<|eot_id|>"), and back.
  std::optional<int32_t> TokenToId(std::string_view token) const;
  std::optional<std::string> IdToToken(int32_t id) const;
  // The first token the post-processor's template puts before the text (<|begin_of_text|> = 128000
  // for Llama 3).
  std::optional<int32_t> bos_id() const;
  // What add_bos adds before and after the ids.
  const std::vector<int32_t>& template_prefix() const;
  const std::vector<int32_t>& template_suffix() const;

  struct Impl;

 private:
  explicit Tokenizer(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<const Impl> impl_;
};

// Incremental detokenizer for streaming: Push() returns the text that became complete with this id
// and never returns a broken UTF-8 character (an incomplete multi-byte sequence is held back until
// its last byte comes). The concatenation of every Push() and Finish() equals tokenizer.Decode(all
// ids, skip_special).
class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tokenizer, bool skip_special = false)
      : tokenizer_(&tokenizer), skip_special_(skip_special) {}
  std::string Push(int32_t id);
  // Flushes what is held back (an incomplete sequence becomes U+FFFD) and resets the decoder.
  std::string Finish();
  // Bytes held back, waiting for the rest of a character.
  size_t pending_bytes() const { return pending_.size(); }

 private:
  const Tokenizer* tokenizer_;
  bool skip_special_;
  std::string pending_;
};

}  // namespace ttc::engine
