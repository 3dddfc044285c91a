// Prompt construction (see prompt.h).
#include "experiments/prompt.h"

namespace ttc::experiments {

std::vector<PromptMessage> MathPromptSal(std::string_view problem) {
  return {{"system", std::string(kMathInstruction)}, {"user", std::string(problem)}};
}

std::vector<PromptMessage> MathPromptMeta(std::string_view problem) {
  std::string content(kMathInstruction);
  content += "\n\nProblem: ";
  content += problem;
  return {{"user", std::move(content)}};
}

Result<std::string> FillTemplate(std::string_view text, std::string_view question) {
  std::string out;
  out.reserve(text.size() + question.size());
  size_t start = 0;
  bool found = false;
  while (true) {
    const size_t pos = text.find(kQuestionPlaceholder, start);
    if (pos == std::string_view::npos) break;
    found = true;
    out.append(text.substr(start, pos - start));
    out.append(question);
    start = pos + kQuestionPlaceholder.size();
  }
  if (!found) return InvalidArgument("prompt template has no {{question}} placeholder");
  out.append(text.substr(start));
  return out;
}

std::vector<PromptMessage> Gsm8kPrompt(std::string_view question) {
  // kGsm8kTemplate always holds the placeholder.
  return {{"user", FillTemplate(kGsm8kTemplate, question).value()}};
}

Result<std::vector<PromptMessage>> CustomPrompt(std::string_view text, std::string_view system,
                                                std::string_view question) {
  TTC_ASSIGN_OR_RETURN(std::string user, FillTemplate(text, question));
  std::vector<PromptMessage> messages;
  if (!system.empty()) messages.push_back({"system", std::string(system)});
  messages.push_back({"user", std::move(user)});
  return messages;
}

Result<std::vector<PromptMessage>> BuildPrompt(const Problem& problem, const PromptSpec& spec) {
  switch (spec.template_kind) {
    case PromptTemplate::kMath:
      if (spec.form == "sal") return MathPromptSal(problem.question);
      if (spec.form == "meta") return MathPromptMeta(problem.question);
      return InvalidArgument("prompt.form '{}' is not 'sal' or 'meta'", spec.form);
    case PromptTemplate::kGsm8k:
      return Gsm8kPrompt(problem.question);
    case PromptTemplate::kCustom: {
      auto messages = CustomPrompt(spec.text, spec.system, problem.question);
      if (!messages.ok()) return messages.status().WithContext("prompt.text");
      return messages;
    }
  }
  return InvalidArgument("unknown prompt template");
}

std::string PlainPromptText(const std::vector<PromptMessage>& messages) {
  std::string out;
  for (const PromptMessage& m : messages) {
    if (!out.empty()) out += "\n\n";
    out += m.content;
  }
  return out;
}

}  // namespace ttc::experiments
