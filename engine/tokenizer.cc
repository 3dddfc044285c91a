// Hugging Face tokenizer.json byte-level BPE. See tokenizer.h for the contract; the comments here
// say why the code does what it does where Hugging Face's behaviour is subtle.
#include "engine/tokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>
#include <array>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <sstream>
#include <unordered_map>

#include "engine/tokenizer_bpe.h"
#include "engine/unicode_tables.h"
#include "engine/unicode_utf8.h"

namespace ttc::engine {

using nlohmann::json;

namespace {

// Ids must be dense: at most twice the number of tokens defined plus this slack. A corrupt or
// hostile file could otherwise make the per-id tables absurdly large with one huge id.
constexpr int64_t kIdSlack = 1024;
// Pre-tokens up to this many bytes use the quadratic merge loop; longer ones the heap.
constexpr size_t kQuadraticMax = 128;

// GPT-2's bytes_to_unicode(): printable bytes map to themselves, the rest to U+0100 upwards.
struct ByteLevelTables {
  std::array<uint32_t, 256> byte_to_cp{};
  std::array<int16_t, 324> cp_to_byte{};
  ByteLevelTables() {
    cp_to_byte.fill(-1);
    std::array<bool, 256> printable{};
    for (int b = '!'; b <= '~'; ++b) printable[b] = true;
    for (int b = 0xA1; b <= 0xAC; ++b) printable[b] = true;
    for (int b = 0xAE; b <= 0xFF; ++b) printable[b] = true;
    int n = 0;
    for (int b = 0; b < 256; ++b) {
      byte_to_cp[b] = printable[b] ? b : 256 + n++;
      cp_to_byte[byte_to_cp[b]] = static_cast<int16_t>(b);
    }
  }
};
const ByteLevelTables& ByteLevel() {
  static const ByteLevelTables tables;
  return tables;
}

// Byte-level string ("Ġthe") to raw bytes (" the"); nullopt when a character is outside the
// byte-level alphabet.
std::optional<std::string> ByteLevelToBytes(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    utf8::Scan sc = utf8::ScanOne(s, i);
    if (!sc.valid || sc.code_point >= ByteLevel().cp_to_byte.size()) return std::nullopt;
    const int16_t b = ByteLevel().cp_to_byte[sc.code_point];
    if (b < 0) return std::nullopt;
    out.push_back(static_cast<char>(b));
    i += sc.length;
  }
  return out;
}

// Oniguruma's \s (what Hugging Face runs) is Unicode White_Space; PCRE2's \s under UCP also takes
// U+180E. Spell the class out so both engines agree. Used inside [...] as is, outside wrapped in
// [...] or [^...].
constexpr std::string_view kWhiteSpaceClass =
    "\\t\\n\\x{0B}\\f\\r\\x{20}\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}"
    "\\x{202F}\\x{205F}\\x{3000}";

// Rewrites a Hugging Face (Oniguruma) pattern for PCRE2: \s and \S become White_Space classes, and
// \p{L} / \p{N} also take the code points newer Unicode made letters or numbers
// (engine/unicode_tables.h). Escapes other than these, and everything else, pass through unchanged.
std::string RewritePattern(std::string_view pattern) {
  std::string out;
  bool in_class = false;
  auto add_class = [&](std::string_view body, bool negate) {
    if (in_class) {
      out += body;
    } else {
      out += negate ? "[^" : "[";
      out += body;
      out += ']';
    }
  };
  for (size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    if (c == '\\' && i + 1 < pattern.size()) {
      const char e = pattern[i + 1];
      const std::string_view rest = pattern.substr(i);
      if (e == 's') {
        add_class(kWhiteSpaceClass, false);
      } else if (e == 'S' && !in_class) {
        add_class(kWhiteSpaceClass, true);
      } else if (rest.starts_with("\\p{L}") || rest.starts_with("\\p{N}")) {
        std::string body = std::string(rest.substr(0, 5));
        body += rest[3] == 'L' ? unicode::kExtraLetterClass : unicode::kExtraNumberClass;
        add_class(body, false);
        i += 3;  // the loop's ++i and the one below cover the rest of "\p{X}"
      } else {
        out += c;
        out += e;
      }
      ++i;
      continue;
    }
    if (!in_class && c == '[') {
      in_class = true;
      out += c;
      // A ']' right after '[' or '[^' is a literal.
      if (i + 1 < pattern.size() && pattern[i + 1] == '^') out += pattern[++i];
      if (i + 1 < pattern.size() && pattern[i + 1] == ']') out += pattern[++i];
      continue;
    }
    if (in_class && c == '[' && i + 1 < pattern.size() && pattern[i + 1] == ':') {
      // POSIX class [:alpha:] inside a class: copy through its closing ":]".
      const size_t end = pattern.find(":]", i + 2);
      if (end != std::string_view::npos) {
        out.append(pattern.substr(i, end + 2 - i));
        i = end + 1;
        continue;
      }
    }
    if (in_class && c == ']') in_class = false;
    out += c;
  }
  return out;
}

// A compiled Split pattern. PCRE2 code objects are immutable and shareable across threads; match
// data and the JIT stack are per thread.
class Regex {
 public:
  static Result<std::shared_ptr<Regex>> Compile(std::string_view pattern, bool literal,
                                                const std::string& where) {
    int err = 0;
    PCRE2_SIZE err_off = 0;
    std::string rewritten = literal ? std::string(pattern) : RewritePattern(pattern);
    uint32_t options = PCRE2_UTF | PCRE2_UCP | (literal ? PCRE2_LITERAL : 0);
    pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(rewritten.data()),
                                     rewritten.size(), options, &err, &err_off, nullptr);
    if (code == nullptr) {
      std::array<PCRE2_UCHAR, 256> msg{};
      pcre2_get_error_message(err, msg.data(), msg.size());
      return Corrupt("{}: regex {:?} does not compile (PCRE2, offset {}): {}", where,
                     std::string(pattern), err_off, reinterpret_cast<const char*>(msg.data()));
    }
    auto re = std::make_shared<Regex>();
    re->code_ = code;
    re->jit_ = pcre2_jit_compile(code, PCRE2_JIT_COMPLETE) == 0;
    return re;
  }
  Regex() = default;
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;
  ~Regex() {
    if (code_ != nullptr) pcre2_code_free(code_);
  }

  // Splits valid UTF-8 `s` into the matches and the gaps between them (HF behavior "Isolated"), in
  // order. Empty matches split nothing.
  template <typename Fn>
  Status Split(std::string_view s, Fn&& emit) const {
    Scratch& scratch = ThreadScratch();
    const auto* subject = reinterpret_cast<PCRE2_SPTR>(s.data());
    const size_t n = s.size();
    size_t gap = 0;     // start of the text not yet emitted
    size_t search = 0;  // where the next match attempt starts
    while (search < n) {
      int rc =
          jit_ ? pcre2_jit_match(code_, subject, n, search, 0, scratch.match_data, scratch.context)
               : pcre2_match(code_, subject, n, search, PCRE2_NO_UTF_CHECK, scratch.match_data,
                             scratch.context);
      if (rc == PCRE2_ERROR_NOMATCH) break;
      if (rc < 0) {
        std::array<PCRE2_UCHAR, 256> msg{};
        pcre2_get_error_message(rc, msg.data(), msg.size());
        return Unavailable("pre-tokenizer regex failed at byte {} of a {}-byte piece: {}", search,
                           n, reinterpret_cast<const char*>(msg.data()));
      }
      const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(scratch.match_data);
      const size_t start = ov[0], end = ov[1];
      if (end == start) {  // empty match: step over one character and try again
        search = start + utf8::ScanOne(s, start).length;
        continue;
      }
      if (start > gap) emit(s.substr(gap, start - gap));
      emit(s.substr(start, end - start));
      gap = search = end;
    }
    if (gap < n) emit(s.substr(gap));
    return Status::Ok();
  }

 private:
  struct Scratch {
    pcre2_match_data* match_data = nullptr;
    pcre2_match_context* context = nullptr;
    pcre2_jit_stack* jit_stack = nullptr;
    Scratch() {
      match_data = pcre2_match_data_create(1, nullptr);
      context = pcre2_match_context_create(nullptr);
      // Long runs (megabytes of spaces) backtrack character by character; give the JIT room instead
      // of failing.
      jit_stack = pcre2_jit_stack_create(32 * 1024, 64 * 1024 * 1024, nullptr);
      pcre2_jit_stack_assign(context, nullptr, jit_stack);
      pcre2_set_match_limit(context, UINT32_MAX);
      pcre2_set_depth_limit(context, UINT32_MAX);
    }
    ~Scratch() {
      pcre2_match_data_free(match_data);
      pcre2_match_context_free(context);
      pcre2_jit_stack_free(jit_stack);
    }
  };
  static Scratch& ThreadScratch() {
    thread_local Scratch scratch;
    return scratch;
  }

  pcre2_code* code_ = nullptr;
  bool jit_ = false;
};

// GPT-2's regex, used by a ByteLevel pre-tokenizer with use_regex = true.
constexpr std::string_view kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

// Leftmost-longest matcher over the added tokens (what HF's Aho-Corasick with LeftmostLongest
// finds).
class AddedTrie {
 public:
  void Add(std::string_view s, int32_t id) {
    if (s.empty()) return;
    if (nodes_.empty()) nodes_.emplace_back();
    first_byte_[static_cast<unsigned char>(s[0])] = true;
    int32_t node = 0;
    for (char c : s) {
      int32_t next = Child(node, static_cast<unsigned char>(c));
      if (next < 0) {
        next = static_cast<int32_t>(nodes_.size());
        nodes_[node].children.push_back({static_cast<unsigned char>(c), next});
        nodes_.emplace_back();
      }
      node = next;
    }
    nodes_[node].id = id;
  }
  bool empty() const { return nodes_.empty(); }
  // Finds the leftmost-longest match at or after `from`. Returns false when none.
  bool Find(std::string_view s, size_t from, size_t* start, size_t* len, int32_t* id) const {
    for (size_t i = from; i < s.size(); ++i) {
      if (!first_byte_[static_cast<unsigned char>(s[i])]) continue;
      int32_t node = 0;
      size_t best_len = 0;
      int32_t best_id = -1;
      for (size_t j = i; j < s.size(); ++j) {
        node = Child(node, static_cast<unsigned char>(s[j]));
        if (node < 0) break;
        if (nodes_[node].id >= 0) {
          best_len = j + 1 - i;
          best_id = nodes_[node].id;
        }
      }
      if (best_id >= 0) {
        *start = i;
        *len = best_len;
        *id = best_id;
        return true;
      }
    }
    return false;
  }

 private:
  struct Node {
    std::vector<std::pair<unsigned char, int32_t>> children;
    int32_t id = -1;
  };
  int32_t Child(int32_t node, unsigned char c) const {
    for (const auto& [b, next] : nodes_[node].children) {
      if (b == c) return next;
    }
    return -1;
  }
  std::vector<Node> nodes_;
  std::array<bool, 256> first_byte_{};
};

struct PreTokenizerStep {
  std::shared_ptr<Regex> regex;   // Split, or ByteLevel with use_regex
  bool add_prefix_space = false;  // ByteLevel only
};

// Reads a JSON file into a string.
Result<std::string> ReadFile(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec))
    return NotFound("tokenizer file {} does not exist", path.string());
  if (std::filesystem::is_directory(path, ec)) {
    return InvalidArgument("{} is a directory; pass the tokenizer.json file", path.string());
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return IoError("cannot open {}", path.string());
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return IoError("cannot read {}", path.string());
  return ss.str();
}

// Small typed accessors that name the JSON path in their errors.
Result<const json*> Member(const json& obj, const std::string& path, const char* key,
                           json::value_t type) {
  auto it = obj.find(key);
  if (it == obj.end()) return Corrupt("{}.{} is missing", path, key);
  if (it->type() != type) {
    return Corrupt("{}.{} must be {}, found {}", path, key, json(type).type_name(),
                   it->type_name());
  }
  return &*it;
}

bool BoolOr(const json& obj, const char* key, bool fallback) {
  auto it = obj.find(key);
  return (it != obj.end() && it->is_boolean()) ? it->get<bool>() : fallback;
}

std::string TypeOf(const json& obj) {
  auto it = obj.find("type");
  return (it != obj.end() && it->is_string()) ? it->get<std::string>() : std::string();
}

}  // namespace

struct Tokenizer::Impl {
  // Per id.
  std::vector<std::string> token;  // as in the file
  std::vector<std::string> bytes;  // what Decode emits for it
  std::vector<uint8_t> valid;      // the id has a token
  std::vector<uint8_t> special;    // special added token
  std::vector<int32_t> special_list;
  internal::BytesMap
      model_tokens;  // file form of model tokens -> id (merges, unk, added-token checks)
  internal::BytesMap token_to_id;  // file form of every token, added ones included -> id

  internal::BytesMap vocab;  // raw bytes of model tokens -> id
  internal::PairMap merges;
  std::array<int32_t, 256> byte_id{};
  bool ignore_merges = false;
  int32_t unk_id = -1;

  std::vector<PreTokenizerStep> steps;
  AddedTrie trie_raw;                   // added tokens with normalized = false, matched first
  AddedTrie trie_normalized;            // normalized = true, matched in what is left
  std::vector<uint8_t> lstrip, rstrip;  // per id, for added tokens

  std::vector<int32_t> prefix, suffix;
  int64_t max_id = 0;  // exclusive bound on ids, from the number of tokens in the file
  int64_t model_vocab_count = 0;
  int64_t max_added_id = -1;
  // Only while loading.
  std::vector<std::pair<std::string, int32_t>> all_tokens;
  std::unordered_map<std::string, int32_t> added_ids;

  Status LoadModel(const json& model);
  Status LoadAddedTokens(const json& added);
  Status LoadPreTokenizer(const json& pre, const std::string& path);
  Status LoadPostProcessor(const json& post, const std::string& path);

  void EnsureId(int32_t id) {
    if (static_cast<size_t>(id) >= token.size()) {
      token.resize(id + 1);
      bytes.resize(id + 1);
      valid.resize(id + 1, 0);
      special.resize(id + 1, 0);
      lstrip.resize(id + 1, 0);
      rstrip.resize(id + 1, 0);
    }
  }

  // Encoding, innermost first.
  void EncodeWord(std::string_view word, std::vector<int32_t>* out) const;
  Status PreTokenize(std::string_view s, size_t step, std::vector<int32_t>* out) const;
  Status EncodePlain(std::string_view s, std::vector<int32_t>* out) const;
  Status EncodeAdded(std::string_view s, const AddedTrie& trie, const AddedTrie* next,
                     bool recognize_special, std::vector<int32_t>* out) const;
};

Status Tokenizer::Impl::LoadModel(const json& model) {
  const std::string type = TypeOf(model);
  if (!type.empty() && type != "BPE") {
    return Unimplemented("model type {} is not supported (only byte-level BPE)", type);
  }
  if (auto it = model.find("dropout");
      it != model.end() && !it->is_null() && !(it->is_number() && *it == 0)) {
    return Unimplemented("model.dropout (BPE dropout) is not supported");
  }
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    if (auto it = model.find(key);
        it != model.end() && !it->is_null() && !(it->is_string() && it->empty())) {
      return Unimplemented("model.{} is not supported (not a byte-level BPE feature)", key);
    }
  }
  if (BoolOr(model, "byte_fallback", false)) {
    return Unimplemented("model.byte_fallback (SentencePiece-style BPE) is not supported");
  }
  ignore_merges = BoolOr(model, "ignore_merges", false);

  TTC_ASSIGN_OR_RETURN(const json* vocab_json,
                       Member(model, "model", "vocab", json::value_t::object));
  std::vector<std::pair<std::string, int32_t>> vocab_bytes;
  vocab_bytes.reserve(vocab_json->size());
  all_tokens.reserve(vocab_json->size() + 1024);
  for (auto it = vocab_json->begin(); it != vocab_json->end(); ++it) {
    if (!it->is_number_integer()) {
      return Corrupt("model.vocab[{:?}] must be an integer id, found {}", it.key(),
                     it->type_name());
    }
    const int64_t id = it->get<int64_t>();
    if (id < 0 || id >= max_id) {
      return Corrupt("model.vocab[{:?}] = {} is out of range (ids must be dense, below {})",
                     it.key(), id, max_id);
    }
    EnsureId(static_cast<int32_t>(id));
    if (valid[id]) {
      return Corrupt("model.vocab: id {} is given to both {:?} and {:?}", id, token[id], it.key());
    }
    valid[id] = 1;
    token[id] = it.key();
    all_tokens.emplace_back(it.key(), static_cast<int32_t>(id));
    if (auto raw = ByteLevelToBytes(it.key()))
      vocab_bytes.emplace_back(std::move(*raw), static_cast<int32_t>(id));
  }
  model_vocab_count = static_cast<int64_t>(vocab_json->size());
  vocab.Build(vocab_bytes);
  model_tokens.Build(all_tokens);
  for (int b = 0; b < 256; ++b) {
    const char c = static_cast<char>(b);
    byte_id[b] = vocab.Find(std::string_view(&c, 1));
  }
  if (auto it = model.find("unk_token"); it != model.end() && it->is_string()) {
    unk_id = model_tokens.Find(it->get_ref<const std::string&>());
    if (unk_id < 0)
      return Corrupt("model.unk_token {:?} is not in model.vocab", it->get<std::string>());
  }

  TTC_ASSIGN_OR_RETURN(const json* merges_json,
                       Member(model, "model", "merges", json::value_t::array));
  std::vector<std::pair<uint64_t, internal::PairMap::Value>> entries;
  entries.reserve(merges_json->size());
  std::string_view left, right;
  std::string joined;
  for (size_t rank = 0; rank < merges_json->size(); ++rank) {
    const json& m = (*merges_json)[rank];
    if (m.is_string()) {
      const std::string& s = m.get_ref<const std::string&>();
      const size_t sp = s.find(' ');
      if (sp == std::string::npos || s.find(' ', sp + 1) != std::string::npos) {
        return Corrupt("model.merges[{}] = {:?} must be two tokens separated by one space", rank,
                       s);
      }
      left = std::string_view(s).substr(0, sp);
      right = std::string_view(s).substr(sp + 1);
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      left = m[0].get_ref<const std::string&>();
      right = m[1].get_ref<const std::string&>();
    } else {
      return Corrupt("model.merges[{}] must be a string \"a b\" or a pair [\"a\", \"b\"]", rank);
    }
    const int32_t a = model_tokens.Find(left);
    const int32_t b = model_tokens.Find(right);
    if (a < 0 || b < 0) {
      return Corrupt("model.merges[{}]: token {:?} is not in model.vocab", rank,
                     std::string(a < 0 ? left : right));
    }
    joined.assign(left);
    joined.append(right);
    const int32_t merged = model_tokens.Find(joined);
    if (merged < 0) {
      return Corrupt("model.merges[{}]: the merged token {:?} is not in model.vocab", rank, joined);
    }
    entries.push_back({internal::PairMap::Key(a, b), {static_cast<int32_t>(rank), merged}});
  }
  merges.Build(entries);
  return Status::Ok();
}

Status Tokenizer::Impl::LoadAddedTokens(const json& added) {
  if (added.is_null()) return Status::Ok();
  if (!added.is_array())
    return Corrupt("added_tokens must be an array, found {}", added.type_name());
  for (size_t i = 0; i < added.size(); ++i) {
    const json& t = added[i];
    const std::string path = fmt::format("added_tokens[{}]", i);
    if (!t.is_object()) return Corrupt("{} must be an object", path);
    auto id_it = t.find("id");
    if (id_it == t.end() || !id_it->is_number_integer())
      return Corrupt("{}.id must be an integer", path);
    const int64_t id = id_it->get<int64_t>();
    if (id < 0 || id >= max_id)
      return Corrupt("{}.id = {} is out of range (ids must be dense, below {})", path, id, max_id);
    TTC_ASSIGN_OR_RETURN(const json* content_json,
                         Member(t, path, "content", json::value_t::string));
    const std::string& content = content_json->get_ref<const std::string&>();
    if (content.empty()) return Corrupt("{}.content is empty", path);
    if (BoolOr(t, "single_word", false)) {
      return Unimplemented("{} ({:?}): added tokens with single_word = true are not supported",
                           path, content);
    }
    // Hugging Face ignores the file's id and assigns its own: the vocabulary id when the content is
    // a model token, else the next id after the vocabulary and the added tokens so far (it only
    // warns on a mismatch). Refuse files where the two disagree rather than produce ids that differ
    // from Hugging Face's.
    int64_t expected;
    if (auto known = added_ids.find(content); known != added_ids.end()) {
      expected = known->second;
    } else if (const int32_t model_id = model_tokens.Find(content); model_id >= 0) {
      expected = model_id;
    } else {
      expected = max_added_id >= model_vocab_count ? max_added_id + 1 : model_vocab_count;
    }
    if (id != expected) {
      return Corrupt("{} ({:?}): id {} but Hugging Face assigns it id {}", path, content, id,
                     expected);
    }
    max_added_id = std::max(max_added_id, id);
    EnsureId(static_cast<int32_t>(id));
    valid[id] = 1;
    token[id] = content;
    added_ids[content] = static_cast<int32_t>(id);
    all_tokens.emplace_back(content, static_cast<int32_t>(id));
    const bool is_special = BoolOr(t, "special", false);
    special[id] = is_special ? 1 : 0;
    lstrip[id] = BoolOr(t, "lstrip", false) ? 1 : 0;
    rstrip[id] = BoolOr(t, "rstrip", false) ? 1 : 0;
    // HF's default for `normalized` is !special.
    const bool normalized = BoolOr(t, "normalized", !is_special);
    (normalized ? trie_normalized : trie_raw).Add(content, static_cast<int32_t>(id));
  }
  return Status::Ok();
}

Status Tokenizer::Impl::LoadPreTokenizer(const json& pre, const std::string& path) {
  const std::string type = TypeOf(pre);
  if (type == "Sequence") {
    TTC_ASSIGN_OR_RETURN(const json* list,
                         Member(pre, path, "pretokenizers", json::value_t::array));
    for (size_t i = 0; i < list->size(); ++i) {
      TTC_RETURN_IF_ERROR(
          LoadPreTokenizer((*list)[i], fmt::format("{}.pretokenizers[{}]", path, i)));
    }
    return Status::Ok();
  }
  if (type == "Split") {
    auto pattern = pre.find("pattern");
    if (pattern == pre.end() || !pattern->is_object())
      return Corrupt("{}.pattern must be an object", path);
    bool literal = false;
    std::string text;
    if (auto r = pattern->find("Regex"); r != pattern->end() && r->is_string()) {
      text = r->get<std::string>();
    } else if (auto s = pattern->find("String"); s != pattern->end() && s->is_string()) {
      text = s->get<std::string>();
      literal = true;
    } else {
      return Corrupt("{}.pattern must hold a \"Regex\" or \"String\"", path);
    }
    auto behavior = pre.find("behavior");
    const std::string b =
        (behavior != pre.end() && behavior->is_string()) ? behavior->get<std::string>() : "";
    if (b != "Isolated") {
      return Unimplemented("{}: Split behavior {:?} is not supported (only Isolated)", path, b);
    }
    if (BoolOr(pre, "invert", false))
      return Unimplemented("{}: Split with invert = true is not supported", path);
    TTC_ASSIGN_OR_RETURN(auto re, Regex::Compile(text, literal, path + ".pattern"));
    steps.push_back({std::move(re), false});
    return Status::Ok();
  }
  if (type == "ByteLevel") {
    PreTokenizerStep step;
    step.add_prefix_space = BoolOr(pre, "add_prefix_space", true);  // HF's default is true
    if (BoolOr(pre, "use_regex", true)) {
      TTC_ASSIGN_OR_RETURN(step.regex, Regex::Compile(kGpt2Pattern, false, path));
    }
    steps.push_back(std::move(step));
    // ByteLevel must be the last step: what follows would see byte-level characters.
    return Status::Ok();
  }
  if (type.empty()) return Corrupt("{} has no \"type\"", path);
  return Unimplemented("{}: pre-tokenizer {} is not supported (only Split, ByteLevel and Sequence)",
                       path, type);
}

Status Tokenizer::Impl::LoadPostProcessor(const json& post, const std::string& path) {
  if (post.is_null()) return Status::Ok();
  const std::string type = TypeOf(post);
  if (type == "Sequence") {
    TTC_ASSIGN_OR_RETURN(const json* list, Member(post, path, "processors", json::value_t::array));
    for (size_t i = 0; i < list->size(); ++i) {
      TTC_RETURN_IF_ERROR(LoadPostProcessor((*list)[i], fmt::format("{}.processors[{}]", path, i)));
    }
    return Status::Ok();
  }
  if (type == "ByteLevel") return Status::Ok();  // only touches offsets
  if (type == "TemplateProcessing") {
    if (!prefix.empty() || !suffix.empty())
      return Unimplemented("{}: two TemplateProcessing steps", path);
    TTC_ASSIGN_OR_RETURN(const json* single, Member(post, path, "single", json::value_t::array));
    auto specials = post.find("special_tokens");
    bool seen_sequence = false;
    for (size_t i = 0; i < single->size(); ++i) {
      const json& item = (*single)[i];
      const std::string ipath = fmt::format("{}.single[{}]", path, i);
      if (item.is_object() && item.contains("Sequence")) {
        if (seen_sequence) return Corrupt("{}: two sequences in the single template", ipath);
        seen_sequence = true;
        continue;
      }
      if (!item.is_object() || !item.contains("SpecialToken") ||
          !item["SpecialToken"].is_object() || !item["SpecialToken"].contains("id") ||
          !item["SpecialToken"]["id"].is_string()) {
        return Corrupt("{} must be {{\"SpecialToken\": {{\"id\": ...}}}} or {{\"Sequence\": ...}}",
                       ipath);
      }
      const std::string name = item["SpecialToken"]["id"].get<std::string>();
      if (specials == post.end() || !specials->is_object() || !specials->contains(name)) {
        return Corrupt("{}: special token {:?} is not in {}.special_tokens", ipath, name, path);
      }
      const json& ids = (*specials)[name]["ids"];
      if (!ids.is_array())
        return Corrupt("{}.special_tokens[{:?}].ids must be an array", path, name);
      for (const json& id : ids) {
        if (!id.is_number_integer() || id.get<int64_t>() < 0 ||
            static_cast<size_t>(id.get<int64_t>()) >= valid.size() || !valid[id.get<int64_t>()]) {
          return Corrupt("{}.special_tokens[{:?}].ids holds {} which is not a token id", path, name,
                         id.dump());
        }
        (seen_sequence ? suffix : prefix).push_back(id.get<int32_t>());
      }
    }
    if (!seen_sequence) return Corrupt("{}.single has no {{\"Sequence\": ...}} item", path);
    return Status::Ok();
  }
  if (type.empty()) return Corrupt("{} has no \"type\"", path);
  return Unimplemented(
      "{}: post-processor {} is not supported (only TemplateProcessing, ByteLevel, Sequence)", path,
      type);
}

Result<Tokenizer> Tokenizer::Load(const std::filesystem::path& tokenizer_json) {
  TTC_ASSIGN_OR_RETURN(std::string text, ReadFile(tokenizer_json));
  auto tok = FromJson(text);
  if (!tok.ok()) return tok.status().WithContext(tokenizer_json.string());
  return tok;
}

Result<Tokenizer> Tokenizer::FromJson(std::string_view json_text) {
  json root;
  try {
    root = json::parse(json_text.begin(), json_text.end());
  } catch (const json::parse_error& e) {
    return Corrupt("tokenizer.json is not valid JSON (byte {}): {}", e.byte, e.what());
  }
  if (!root.is_object())
    return Corrupt("tokenizer.json must be a JSON object, found {}", root.type_name());
  auto impl = std::make_shared<Impl>();

  if (auto n = root.find("normalizer"); n != root.end() && !n->is_null()) {
    const bool empty_sequence = TypeOf(*n) == "Sequence" && n->contains("normalizers") &&
                                (*n)["normalizers"].is_array() && (*n)["normalizers"].empty();
    if (!empty_sequence) {
      return Unimplemented("normalizer {} is not supported (only null)",
                           TypeOf(*n).empty() ? n->dump() : TypeOf(*n));
    }
  }
  if (auto t = root.find("truncation"); t != root.end() && !t->is_null()) {
    return Unimplemented("truncation is set; encoding with truncation is not supported");
  }
  auto model = root.find("model");
  if (model == root.end() || !model->is_object())
    return Corrupt("tokenizer.json has no \"model\" object");
  {
    size_t count = 0;
    if (auto v = model->find("vocab"); v != model->end() && v->is_object()) count += v->size();
    if (auto a = root.find("added_tokens"); a != root.end() && a->is_array()) count += a->size();
    impl->max_id = 2 * static_cast<int64_t>(count) + kIdSlack;
  }
  TTC_RETURN_IF_ERROR(impl->LoadModel(*model));
  if (auto added = root.find("added_tokens"); added != root.end()) {
    TTC_RETURN_IF_ERROR(impl->LoadAddedTokens(*added));
  }

  auto pre = root.find("pre_tokenizer");
  if (pre == root.end() || pre->is_null()) {
    return Unimplemented(
        "pre_tokenizer is null; only byte-level BPE (a ByteLevel pre-tokenizer) is supported");
  }
  TTC_RETURN_IF_ERROR(impl->LoadPreTokenizer(*pre, "pre_tokenizer"));
  // The byte-level step must come last (it also maps text to the byte alphabet, which this
  // implementation does implicitly by working on raw bytes); every step before it must be a Split.
  bool byte_level_last = false;
  {
    const json* last = &*pre;
    if (TypeOf(*pre) == "Sequence" && !(*pre)["pretokenizers"].empty())
      last = &(*pre)["pretokenizers"].back();
    byte_level_last = TypeOf(*last) == "ByteLevel";
    size_t byte_levels = 0;
    if (TypeOf(*pre) == "Sequence") {
      for (const json& p : (*pre)["pretokenizers"]) byte_levels += TypeOf(p) == "ByteLevel";
    } else {
      byte_levels = byte_level_last;
    }
    if (!byte_level_last || byte_levels != 1) {
      return Unimplemented(
          "pre_tokenizer: exactly one ByteLevel step, placed last, is required (only byte-level "
          "BPE is supported)");
    }
  }

  if (auto post = root.find("post_processor"); post != root.end()) {
    TTC_RETURN_IF_ERROR(impl->LoadPostProcessor(*post, "post_processor"));
  }
  auto dec = root.find("decoder");
  if (dec == root.end() || dec->is_null())
    return Unimplemented("decoder is null; only the ByteLevel decoder is supported");
  if (TypeOf(*dec) != "ByteLevel") {
    return Unimplemented("decoder {} is not supported (only ByteLevel)",
                         TypeOf(*dec).empty() ? dec->dump() : TypeOf(*dec));
  }

  impl->token_to_id.Build(impl->all_tokens);
  impl->all_tokens = {};
  impl->added_ids = {};
  // What Decode emits per id: HF's ByteLevel decoder maps every character of the token through the
  // byte-level alphabet, and keeps the token's own UTF-8 when one character is outside it.
  for (size_t id = 0; id < impl->token.size(); ++id) {
    if (!impl->valid[id]) continue;
    if (impl->special[id]) impl->special_list.push_back(static_cast<int32_t>(id));
    auto raw = ByteLevelToBytes(impl->token[id]);
    impl->bytes[id] = raw ? std::move(*raw) : impl->token[id];
  }
  return Tokenizer(std::move(impl));
}

// One pre-token to ids: the whole word when ignore_merges finds it, else byte symbols merged by
// rank.
void Tokenizer::Impl::EncodeWord(std::string_view word, std::vector<int32_t>* out) const {
  if (ignore_merges) {
    const int32_t id = vocab.Find(word);
    if (id >= 0) {
      out->push_back(id);
      return;
    }
  }
  thread_local std::vector<int32_t> symbols;
  symbols.clear();
  for (char c : word) {
    const int32_t id = byte_id[static_cast<unsigned char>(c)];
    if (id >= 0) {
      symbols.push_back(id);
    } else if (unk_id >= 0) {
      symbols.push_back(unk_id);  // HF: an unknown character becomes unk, or vanishes without one
    }
  }
  if (symbols.size() <= kQuadraticMax) {
    internal::BpeMergeQuadratic(merges, &symbols);
  } else {
    internal::BpeMergeBuckets(merges, &symbols);
  }
  out->insert(out->end(), symbols.begin(), symbols.end());
}

Status Tokenizer::Impl::PreTokenize(std::string_view s, size_t step,
                                    std::vector<int32_t>* out) const {
  if (step == steps.size()) {
    EncodeWord(s, out);
    return Status::Ok();
  }
  const PreTokenizerStep& st = steps[step];
  std::string prefixed;
  if (st.add_prefix_space && (s.empty() || s[0] != ' ')) {
    prefixed.reserve(s.size() + 1);
    prefixed += ' ';
    prefixed += s;
    s = prefixed;
  }
  if (!st.regex) return PreTokenize(s, step + 1, out);
  Status status;
  Status split = st.regex->Split(s, [&](std::string_view piece) {
    if (status.ok()) status = PreTokenize(piece, step + 1, out);
  });
  TTC_RETURN_IF_ERROR(split);
  return status;
}

// Text without added tokens: valid UTF-8 runs go through the pre-tokenizers; each ill-formed
// subpart is a word of its own (it cannot match the regex, and keeping it whole keeps the encoding
// lossless).
Status Tokenizer::Impl::EncodePlain(std::string_view s, std::vector<int32_t>* out) const {
  if (s.empty()) return Status::Ok();
  if (utf8::IsValid(s)) return PreTokenize(s, 0, out);
  size_t run = 0, i = 0;
  while (i < s.size()) {
    if (static_cast<unsigned char>(s[i]) < 0x80) {
      ++i;
      continue;
    }
    utf8::Scan sc = utf8::ScanOne(s, i);
    if (sc.valid) {
      i += sc.length;
      continue;
    }
    if (i > run) TTC_RETURN_IF_ERROR(PreTokenize(s.substr(run, i - run), 0, out));
    EncodeWord(s.substr(i, sc.length), out);
    i += sc.length;
    run = i;
  }
  if (run < s.size()) TTC_RETURN_IF_ERROR(PreTokenize(s.substr(run), 0, out));
  return Status::Ok();
}

Status Tokenizer::Impl::EncodeAdded(std::string_view s, const AddedTrie& trie,
                                    const AddedTrie* next, bool recognize_special,
                                    std::vector<int32_t>* out) const {
  auto rest = [&](std::string_view piece) -> Status {
    if (piece.empty()) return Status::Ok();
    if (next != nullptr) return EncodeAdded(piece, *next, nullptr, recognize_special, out);
    return EncodePlain(piece, out);
  };
  if (trie.empty()) return rest(s);
  size_t emitted = 0;  // end of the text already handed on
  size_t search = 0;
  size_t start, len;
  int32_t id;
  while (search < s.size() && trie.Find(s, search, &start, &len, &id)) {
    search = start + len;
    // With recognition off, a special token's text stays text; the match still consumes it, as in
    // HF.
    if (special[id] && !recognize_special) continue;
    size_t begin = start, end = start + len;
    if (lstrip[id]) {
      size_t b = emitted, last_non_space = emitted;
      while (b < begin) {
        utf8::Scan sc = utf8::ScanOne(s, b);
        b += sc.length;
        if (!sc.valid || !utf8::IsWhiteSpace(sc.code_point)) last_non_space = b;
      }
      begin = last_non_space;
    }
    if (rstrip[id]) {
      while (end < s.size()) {
        utf8::Scan sc = utf8::ScanOne(s, end);
        if (!sc.valid || !utf8::IsWhiteSpace(sc.code_point)) break;
        end += sc.length;
      }
      search = std::max(search, end);
    }
    TTC_RETURN_IF_ERROR(rest(s.substr(emitted, begin - emitted)));
    out->push_back(id);
    emitted = end;
  }
  return rest(s.substr(emitted));
}

Result<std::vector<int32_t>> Tokenizer::Encode(std::string_view text,
                                               const EncodeOptions& options) const {
  const Impl& im = *impl_;
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 4);
  if (options.add_bos) ids.insert(ids.end(), im.prefix.begin(), im.prefix.end());
  const bool raw_first = !im.trie_raw.empty();
  TTC_RETURN_IF_ERROR(
      im.EncodeAdded(text, raw_first ? im.trie_raw : im.trie_normalized,
                     raw_first && !im.trie_normalized.empty() ? &im.trie_normalized : nullptr,
                     options.recognize_special, &ids));
  if (options.add_bos) ids.insert(ids.end(), im.suffix.begin(), im.suffix.end());
  return ids;
}

std::string Tokenizer::DecodeBytes(std::span<const int32_t> ids, bool skip_special) const {
  const Impl& im = *impl_;
  std::string out;
  for (int32_t id : ids) {
    if (!IsValidId(id) || (skip_special && im.special[id])) continue;
    out += im.bytes[id];
  }
  return out;
}

std::string Tokenizer::Decode(std::span<const int32_t> ids, bool skip_special) const {
  const std::string raw = DecodeBytes(ids, skip_special);
  if (utf8::IsValid(raw)) return raw;
  return utf8::ToValidLossy(raw);
}

std::string_view Tokenizer::TokenBytes(int32_t id) const {
  return IsValidId(id) ? std::string_view(impl_->bytes[id]) : std::string_view();
}

int32_t Tokenizer::vocab_size() const { return static_cast<int32_t>(impl_->token.size()); }

bool Tokenizer::IsValidId(int32_t id) const {
  return id >= 0 && static_cast<size_t>(id) < impl_->valid.size() && impl_->valid[id];
}

bool Tokenizer::IsSpecial(int32_t id) const { return IsValidId(id) && impl_->special[id]; }

const std::vector<int32_t>& Tokenizer::special_ids() const { return impl_->special_list; }

std::optional<int32_t> Tokenizer::TokenToId(std::string_view token) const {
  const int32_t id = impl_->token_to_id.Find(token);
  if (id < 0) return std::nullopt;
  return id;
}

std::optional<std::string> Tokenizer::IdToToken(int32_t id) const {
  if (!IsValidId(id)) return std::nullopt;
  return impl_->token[id];
}

std::optional<int32_t> Tokenizer::bos_id() const {
  if (impl_->prefix.empty()) return std::nullopt;
  return impl_->prefix.front();
}

const std::vector<int32_t>& Tokenizer::template_prefix() const { return impl_->prefix; }
const std::vector<int32_t>& Tokenizer::template_suffix() const { return impl_->suffix; }

std::string StreamDecoder::Push(int32_t id) {
  if (tokenizer_->IsValidId(id) && !(skip_special_ && tokenizer_->IsSpecial(id))) {
    pending_ += tokenizer_->TokenBytes(id);
  }
  // Emit everything up to an incomplete sequence at the very end; ill-formed subparts that no later
  // byte can fix become U+FFFD now, exactly where the whole-text lossy decode would put them.
  std::string out;
  size_t i = 0, run = 0;
  while (i < pending_.size()) {
    if (static_cast<unsigned char>(pending_[i]) < 0x80) {
      ++i;
      continue;
    }
    utf8::Scan sc = utf8::ScanOne(pending_, i);
    if (sc.valid) {
      i += sc.length;
      continue;
    }
    if (sc.truncated) break;
    out.append(pending_, run, i - run);
    out += "\xEF\xBF\xBD";
    i += sc.length;
    run = i;
  }
  out.append(pending_, run, i - run);
  pending_.erase(0, i);
  return out;
}

std::string StreamDecoder::Finish() {
  std::string out = utf8::ToValidLossy(pending_);
  pending_.clear();
  return out;
}

}  // namespace ttc::engine
