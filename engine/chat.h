// Llama 3 chat rendering: the search-and-learn (SAL) template, the stock Llama 3.1/3.2 Instruct
// template (no tools) with its date line pinned by configuration, and the plain Llama 3 template
// that ships in a model's tokenizer_config.json (../shared/reference/evaluation.md §2.3,
// architectures.md §1.3). Rendering is pure string building, no Jinja; EncodeChat turns messages
// into ids with the template's special tokens as ids and message contents encoded as plain text, so
// a message that contains "<|eot_id|>" cannot forge a turn. Thread safety: pure functions; safe
// from any thread.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "engine/tokenizer.h"

namespace ttc::engine {

struct ChatMessage {
  std::string role;  // "system", "user", "assistant" (others render with their own header)
  std::string content;
};

enum class ChatTemplate {
  // SAL's custom template: no BOS in the text (the tokenizer adds it: encode with add_bos), system
  // block with the
  // date lines always present, system message trimmed, user/assistant contents NOT trimmed.
  kSearchAndLearn,
  // Stock Llama 3.1/3.2 Instruct (no tools): BOS in the text, the same system block, every content
  // trimmed.
  kLlama3Stock,
  // The plain Llama 3 template of tokenizer_config.json: BOS, then one trimmed block per message,
  // no system block.
  kTokenizerConfig,
};

struct ChatOptions {
  ChatTemplate chat_template = ChatTemplate::kSearchAndLearn;
  // The "Today Date:" line; HF stamps the run's date, which is not reproducible, so it is
  // configuration.
  std::string date = "26 Jul 2024";
  bool add_generation_prompt = true;
};

// "sal", "llama3-stock", "tokenizer-config" and back.
const char* ChatTemplateName(ChatTemplate t);
Result<ChatTemplate> ParseChatTemplate(std::string_view name);

// Whether the rendered text already starts with <|begin_of_text|> (if not, encode with add_bos so
// that exactly one BOS leads the prompt).
bool ChatTemplateEmitsBos(ChatTemplate t);

// The rendered prompt text. Errors: an empty message list, an empty role, or a role with characters
// that would break the header ("<|", newline).
Result<std::string> RenderChat(std::span<const ChatMessage> messages, const ChatOptions& options);

// The prompt ids: BOS exactly once, template structure as special-token ids, message contents
// encoded with special recognition off. Equal to Encode(RenderChat(...)) (+BOS when the template
// has none) whenever no content contains special-token text. Errors if the tokenizer lacks one of
// the Llama 3 header tokens.
Result<std::vector<int32_t>> EncodeChat(const Tokenizer& tokenizer,
                                        std::span<const ChatMessage> messages,
                                        const ChatOptions& options);

// What a model's tokenizer_config.json says about chat rendering.
struct TokenizerConfig {
  std::string chat_template;  // empty when the file has none
  std::string bos_token;
  std::string eos_token;
  // chat_template is exactly the plain Llama 3 template (ChatTemplate::kTokenizerConfig renders
  // it).
  bool is_plain_llama3 = false;
  // chat_template carries the 3.1/3.2 "Cutting Knowledge Date" system block (render with
  // kLlama3Stock, no tools).
  bool is_llama3_stock = false;
};

// Reads tokenizer_config.json. Errors name the file and the field (bos_token/eos_token may be
// strings or
// {"content": ...} objects).
Result<TokenizerConfig> LoadTokenizerConfig(const std::filesystem::path& path);
Result<TokenizerConfig> ParseTokenizerConfig(std::string_view json_text);

// True when `jinja` is the plain Llama 3 template (whitespace between Jinja tags ignored).
bool IsPlainLlama3Template(std::string_view jinja);

}  // namespace ttc::engine
