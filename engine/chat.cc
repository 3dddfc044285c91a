// Llama 3 chat rendering without a Jinja engine: each supported template is spelled out once, as a
// sequence of special tokens and text, and both RenderChat (text) and EncodeChat (ids) walk that
// same sequence.
#include "engine/chat.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "engine/unicode_utf8.h"

namespace ttc::engine {

namespace {

constexpr std::string_view kBos = "<|begin_of_text|>";
constexpr std::string_view kStartHeader = "<|start_header_id|>";
constexpr std::string_view kEndHeader = "<|end_header_id|>";
constexpr std::string_view kEot = "<|eot_id|>";

// The template of ../shared/assets/llama3/tokenizer_config.json (Meta-Llama-3-Instruct's own).
constexpr std::string_view kPlainLlama3Template =
    "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
    "'<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim "
    "+ "
    "'<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ "
    "content }}"
    "{% endfor %}{% if add_generation_prompt %}{{ "
    "'<|start_header_id|>assistant<|end_header_id|>\n\n' }}"
    "{% endif %}";

// Receives the template's pieces: special tokens (by name) and text.
class Sink {
 public:
  virtual ~Sink() = default;
  virtual Status Special(std::string_view name) = 0;
  virtual void Text(std::string_view text) = 0;
};

Status CheckRole(const ChatMessage& m, size_t index) {
  if (m.role.empty()) return InvalidArgument("chat message {}: the role is empty", index);
  if (m.role.find("<|") != std::string::npos || m.role.find('\n') != std::string::npos ||
      m.role.find('\r') != std::string::npos) {
    return InvalidArgument("chat message {}: role {:?} holds '<|' or a line break", index, m.role);
  }
  return Status::Ok();
}

Status Header(Sink& sink, std::string_view role) {
  TTC_RETURN_IF_ERROR(sink.Special(kStartHeader));
  sink.Text(role);
  TTC_RETURN_IF_ERROR(sink.Special(kEndHeader));
  sink.Text("\n\n");
  return Status::Ok();
}

Status Render(std::span<const ChatMessage> messages, const ChatOptions& options, Sink& sink) {
  if (messages.empty()) return InvalidArgument("chat has no messages");
  for (size_t i = 0; i < messages.size(); ++i) TTC_RETURN_IF_ERROR(CheckRole(messages[i], i));
  const ChatTemplate t = options.chat_template;
  if (ChatTemplateEmitsBos(t)) TTC_RETURN_IF_ERROR(sink.Special(kBos));
  size_t first = 0;
  if (t == ChatTemplate::kSearchAndLearn || t == ChatTemplate::kLlama3Stock) {
    // Both take only a leading system message as the system prompt (trimmed in both), and always
    // emit the block.
    std::string_view system;
    if (messages[0].role == "system") {
      system = utf8::PythonStrip(messages[0].content);
      first = 1;
    }
    TTC_RETURN_IF_ERROR(Header(sink, "system"));
    sink.Text("Cutting Knowledge Date: December 2023\nToday Date: ");
    sink.Text(options.date);
    sink.Text("\n\n");
    sink.Text(system);
    TTC_RETURN_IF_ERROR(sink.Special(kEot));
  }
  const bool trim = t != ChatTemplate::kSearchAndLearn;
  for (size_t i = first; i < messages.size(); ++i) {
    TTC_RETURN_IF_ERROR(Header(sink, messages[i].role));
    sink.Text(trim ? utf8::PythonStrip(messages[i].content)
                   : std::string_view(messages[i].content));
    TTC_RETURN_IF_ERROR(sink.Special(kEot));
  }
  if (options.add_generation_prompt) TTC_RETURN_IF_ERROR(Header(sink, "assistant"));
  return Status::Ok();
}

class TextSink : public Sink {
 public:
  Status Special(std::string_view name) override {
    out_ += name;
    return Status::Ok();
  }
  void Text(std::string_view text) override { out_ += text; }
  std::string& out() { return out_; }

 private:
  std::string out_;
};

// Text between special tokens is gathered and encoded as one piece, so that the ids equal those of
// encoding the whole rendered string (pre-tokenization never crosses a special token).
class IdSink : public Sink {
 public:
  explicit IdSink(const Tokenizer& tokenizer) : tok_(tokenizer) {}
  Status Special(std::string_view name) override {
    TTC_RETURN_IF_ERROR(Flush());
    auto id = tok_.TokenToId(name);
    if (!id || !tok_.IsSpecial(*id)) {
      return FailedPrecondition("the tokenizer has no special token {}: not a Llama 3 tokenizer",
                                name);
    }
    ids_.push_back(*id);
    return Status::Ok();
  }
  void Text(std::string_view text) override { pending_ += text; }
  Status Flush() {
    if (pending_.empty()) return Status::Ok();
    EncodeOptions o;
    o.recognize_special = false;
    TTC_ASSIGN_OR_RETURN(auto ids, tok_.Encode(pending_, o));
    ids_.insert(ids_.end(), ids.begin(), ids.end());
    pending_.clear();
    return Status::Ok();
  }
  std::vector<int32_t>& ids() { return ids_; }

 private:
  const Tokenizer& tok_;
  std::string pending_;
  std::vector<int32_t> ids_;
};

Result<std::string> TokenString(const nlohmann::json& config, const char* key) {
  auto it = config.find(key);
  if (it == config.end() || it->is_null()) return std::string();
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object() && it->contains("content") && (*it)["content"].is_string()) {
    return (*it)["content"].get<std::string>();
  }
  return Corrupt("{} must be a string or {{\"content\": ...}}, found {}", key, it->type_name());
}

// Drops whitespace outside quoted string literals: Jinja does not care about it between tags and
// expressions.
std::string SquashJinja(std::string_view s) {
  std::string out;
  char quote = 0;
  for (char c : s) {
    if (quote != 0) {
      out += c;
      if (c == quote) quote = 0;
    } else if (c == '\'' || c == '"') {
      quote = c;
      out += c;
    } else if (c != ' ' && c != '\t' && c != '\n' && c != '\r') {
      out += c;
    }
  }
  return out;
}

}  // namespace

const char* ChatTemplateName(ChatTemplate t) {
  switch (t) {
    case ChatTemplate::kSearchAndLearn:
      return "sal";
    case ChatTemplate::kLlama3Stock:
      return "llama3-stock";
    case ChatTemplate::kTokenizerConfig:
      return "tokenizer-config";
  }
  return "unknown";
}

Result<ChatTemplate> ParseChatTemplate(std::string_view name) {
  for (ChatTemplate t : {ChatTemplate::kSearchAndLearn, ChatTemplate::kLlama3Stock,
                         ChatTemplate::kTokenizerConfig}) {
    if (name == ChatTemplateName(t)) return t;
  }
  return InvalidArgument(
      "unknown chat template {:?} (expected sal, llama3-stock or tokenizer-config)",
      std::string(name));
}

bool ChatTemplateEmitsBos(ChatTemplate t) { return t != ChatTemplate::kSearchAndLearn; }

Result<std::string> RenderChat(std::span<const ChatMessage> messages, const ChatOptions& options) {
  TextSink sink;
  TTC_RETURN_IF_ERROR(Render(messages, options, sink));
  return std::move(sink.out());
}

Result<std::vector<int32_t>> EncodeChat(const Tokenizer& tokenizer,
                                        std::span<const ChatMessage> messages,
                                        const ChatOptions& options) {
  IdSink sink(tokenizer);
  if (!ChatTemplateEmitsBos(options.chat_template)) TTC_RETURN_IF_ERROR(sink.Special(kBos));
  TTC_RETURN_IF_ERROR(Render(messages, options, sink));
  TTC_RETURN_IF_ERROR(sink.Flush());
  return std::move(sink.ids());
}

bool IsPlainLlama3Template(std::string_view jinja) {
  return SquashJinja(jinja) == SquashJinja(kPlainLlama3Template);
}

Result<TokenizerConfig> ParseTokenizerConfig(std::string_view json_text) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(json_text.begin(), json_text.end());
  } catch (const nlohmann::json::parse_error& e) {
    return Corrupt("tokenizer_config.json is not valid JSON (byte {}): {}", e.byte, e.what());
  }
  if (!j.is_object()) return Corrupt("tokenizer_config.json must be a JSON object");
  TokenizerConfig config;
  if (auto it = j.find("chat_template"); it != j.end() && !it->is_null()) {
    if (!it->is_string()) {
      return Unimplemented(
          "chat_template is a {} (named templates are not supported), expected a string",
          it->type_name());
    }
    config.chat_template = it->get<std::string>();
  }
  TTC_ASSIGN_OR_RETURN(config.bos_token, TokenString(j, "bos_token"));
  TTC_ASSIGN_OR_RETURN(config.eos_token, TokenString(j, "eos_token"));
  config.is_plain_llama3 = IsPlainLlama3Template(config.chat_template);
  config.is_llama3_stock = config.chat_template.find("Cutting Knowledge Date") != std::string::npos;
  return config;
}

Result<TokenizerConfig> LoadTokenizerConfig(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound("cannot open {}", path.string());
  std::ostringstream ss;
  ss << in.rdbuf();
  auto config = ParseTokenizerConfig(ss.str());
  if (!config.ok()) return config.status().WithContext(path.string());
  return config;
}

}  // namespace ttc::engine
