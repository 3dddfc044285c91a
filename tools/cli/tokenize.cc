// `ttc tokenize`: encode text to ids or decode ids to text with a Hugging Face tokenizer.json, for
// one string
// (--text) or a JSON-lines file (--jsonl: one output line per input line, in order; errors name the
// line).
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "engine/tokenizer.h"
#include "tools/cli/command.h"

namespace ttc::cli {

namespace {

struct TokenizeArgs {
  std::string tokenizer;
  std::string text;
  std::string jsonl;
  bool special = false;
  bool decode = false;
  bool skip_special = false;
  bool bos = false;
  bool json = false;
};

// "1 2 3", "1,2,3" or "[1, 2, 3]".
Result<std::vector<int32_t>> ParseIdList(const std::string& s) {
  std::string cleaned = s;
  for (char& c : cleaned) {
    if (c == ',' || c == '[' || c == ']') c = ' ';
  }
  std::istringstream in(cleaned);
  std::vector<int32_t> ids;
  std::string word;
  while (in >> word) {
    size_t used = 0;
    long long v = 0;
    try {
      v = std::stoll(word, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != word.size() || v < INT32_MIN || v > INT32_MAX) {
      return InvalidArgument("{:?} is not a token id", word);
    }
    ids.push_back(static_cast<int32_t>(v));
  }
  return ids;
}

Status CheckIds(const engine::Tokenizer& tok, const std::vector<int32_t>& ids) {
  for (size_t i = 0; i < ids.size(); ++i) {
    if (!tok.IsValidId(ids[i])) {
      return InvalidArgument("id {} (position {}) is not a token of this tokenizer (vocab_size {})",
                             ids[i], i, tok.vocab_size());
    }
  }
  return Status::Ok();
}

Result<std::string> ProcessLine(const engine::Tokenizer& tok, const TokenizeArgs& a,
                                const std::string& line) {
  nlohmann::json in;
  try {
    in = nlohmann::json::parse(line);
  } catch (const nlohmann::json::parse_error& e) {
    return InvalidArgument("not valid JSON: {}", e.what());
  }
  if (!in.is_object()) return InvalidArgument("expected a JSON object");
  if (a.decode) {
    auto it = in.find("ids");
    if (it == in.end() || !it->is_array()) return InvalidArgument("expected {{\"ids\": [...]}}");
    std::vector<int32_t> ids;
    for (const auto& v : *it) {
      if (!v.is_number_integer() || v.get<int64_t>() < INT32_MIN || v.get<int64_t>() > INT32_MAX) {
        return InvalidArgument("ids holds {}, not a token id", v.dump());
      }
      ids.push_back(v.get<int32_t>());
    }
    TTC_RETURN_IF_ERROR(CheckIds(tok, ids));
    return nlohmann::json({{"text", tok.Decode(ids, a.skip_special)}}).dump();
  }
  auto it = in.find("text");
  if (it == in.end() || !it->is_string()) return InvalidArgument("expected {{\"text\": \"...\"}}");
  engine::EncodeOptions o;
  o.recognize_special = a.special;
  o.add_bos = a.bos;
  TTC_ASSIGN_OR_RETURN(auto ids, tok.Encode(it->get<std::string>(), o));
  return nlohmann::json({{"ids", ids}}).dump();
}

int Run(const TokenizeArgs& a) {
  auto tok = engine::Tokenizer::Load(a.tokenizer);
  if (!tok.ok()) {
    std::cerr << "error: " << tok.status().ToString() << "\n";
    return kExitFailure;
  }
  if (!a.jsonl.empty()) {
    std::ifstream file;
    std::istream* in = &std::cin;
    if (a.jsonl != "-") {
      file.open(a.jsonl, std::ios::binary);
      if (!file) {
        std::cerr << "error: cannot open " << a.jsonl << "\n";
        return kExitFailure;
      }
      in = &file;
    }
    std::string line;
    size_t number = 0;
    while (std::getline(*in, line)) {
      ++number;
      auto out = ProcessLine(*tok, a, line);
      if (!out.ok()) {
        std::cout.flush();
        std::cerr << "error: " << a.jsonl << " line " << number << ": " << out.status().message()
                  << "\n";
        return kExitFailure;
      }
      std::cout << *out << "\n";
    }
    return kExitOk;
  }
  if (a.decode) {
    auto ids = ParseIdList(a.text);
    Status st = ids.ok() ? CheckIds(*tok, *ids) : ids.status();
    if (!st.ok()) {
      std::cerr << "error: --text: " << st.message() << "\n";
      return kExitFailure;
    }
    const std::string text = tok->Decode(*ids, a.skip_special);
    if (a.json) {
      std::cout << nlohmann::json({{"text", text}}).dump() << "\n";
    } else {
      std::cout << text << "\n";
    }
    return kExitOk;
  }
  engine::EncodeOptions o;
  o.recognize_special = a.special;
  o.add_bos = a.bos;
  auto ids = tok->Encode(a.text, o);
  if (!ids.ok()) {
    std::cerr << "error: " << ids.status().ToString() << "\n";
    return kExitFailure;
  }
  if (a.json) {
    nlohmann::json tokens = nlohmann::json::array();
    for (int32_t id : *ids) tokens.push_back(tok->IdToToken(id).value_or(""));
    std::cout << nlohmann::json({{"ids", *ids}, {"tokens", tokens}, {"count", ids->size()}}).dump()
              << "\n";
  } else {
    for (size_t i = 0; i < ids->size(); ++i) std::cout << (i ? " " : "") << (*ids)[i];
    std::cout << "\n";
  }
  return kExitOk;
}

void RegisterTokenize(CLI::App& app, CommandTable& table) {
  auto a = std::make_shared<TokenizeArgs>();
  auto self = std::make_shared<CLI::App*>(nullptr);
  CLI::App* sub =
      AddCommand(app, table, "tokenize",
                 "Encode text to token ids or decode ids with a tokenizer.json", [a, self] {
                   // --text "" is a valid (empty) text, so count the flags rather than test
                   // emptiness.
                   if ((*self)->count("--text") + (*self)->count("--jsonl") != 1) {
                     return UsageError("tokenize: give exactly one of --text or --jsonl");
                   }
                   return Run(*a);
                 });
  *self = sub;
  sub->add_option("--tokenizer", a->tokenizer, "Hugging Face tokenizer.json")->required();
  auto* text =
      sub->add_option("--text", a->text, "Text to encode (with --decode: ids, e.g. \"9906 1917\")");
  auto* jsonl = sub->add_option(
      "--jsonl", a->jsonl,
      "JSON-lines file ('-' for stdin): {\"text\": ...} per line, or {\"ids\": [...]} "
      "with --decode; prints one JSON line per input line");
  text->excludes(jsonl);
  sub->add_flag(
      "--special", a->special,
      "Match special-token text such as <|eot_id|> as the special token (default: plain text)");
  sub->add_flag("--bos", a->bos,
                "Add what the tokenizer's post-processor adds (Llama 3: <|begin_of_text|>)");
  sub->add_flag("--decode", a->decode, "Decode ids to text instead of encoding");
  sub->add_flag("--skip-special", a->skip_special,
                "With --decode: drop special tokens from the text");
  sub->add_flag("--json", a->json, "Print JSON ({\"ids\", \"tokens\", \"count\"} or {\"text\"})");
}

}  // namespace

TTC_REGISTER_COMMAND(kOrderTokenize, RegisterTokenize);

}  // namespace ttc::cli
