// Prompts: the chat messages a model sees for a problem (reference/evaluation.md §2). The MATH
// instruction is the Llama 3 evaluation instruction, byte-identical to search-and-learn's system
// prompt (577 bytes); the GSM8K template is lm-eval's Llama 3 zero-shot user turn (203 bytes with
// "{question}"). A grid may instead give its own template. This module only builds {role, content}
// messages; turning them into tokens (the Llama 3 chat template with its date line) is the engine's
// RenderChat/EncodeChat (engine/chat.h), which the worker calls with the grid's
// prompt.chat_template and prompt.date.
//
// Pure functions over constants; safe to call from any number of threads.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "experiments/grid.h"
#include "experiments/problem.h"

namespace ttc::experiments {

// The Llama 3 MATH instruction (§2.1). sha256
// fba6765edf2162ae50990853a7f310103b685c72d9b4434cccec28371f005dae.
inline constexpr std::string_view kMathInstruction =
    "Solve the following math problem efficiently and clearly:\n\n"
    "- For simple problems (2 steps or fewer):\nProvide a concise solution with minimal "
    "explanation.\n\n"
    "- For complex problems (3 steps or more):\nUse this step-by-step format:\n\n"
    "## Step 1: [Concise description]\n[Brief explanation and calculations]\n\n"
    "## Step 2: [Concise description]\n[Brief explanation and calculations]\n\n"
    "...\n\n"
    "Regardless of the approach, always conclude with:\n\n"
    "Therefore, the final answer is: $\\boxed{answer}$. I hope it is correct.\n\n"
    "Where [answer] is just the final number or expression that solves the problem.";

// The Llama 3 GSM8K user turn (§2.2). sha256
// 01163f30e49f9dd1980264dcff94dc7165ed8718d80ca629ba3eab8e30814b25.
inline constexpr std::string_view kGsm8kTemplate =
    "Given the following problem, reason and give a final answer to the problem.\nProblem: "
    "{question}\n"
    "Your response should end with \"The final answer is [answer]\" where [answer] is the response "
    "to the "
    "problem.";

// The placeholder a template's question goes into.
inline constexpr std::string_view kQuestionPlaceholder = "{question}";

struct PromptMessage {
  std::string role;  // "system" | "user" | "assistant"
  std::string content;

  bool operator==(const PromptMessage&) const = default;
};

// SAL form (the default): [system: kMathInstruction, user: problem verbatim].
std::vector<PromptMessage> MathPromptSal(std::string_view problem);

// Meta / lm-eval llama_math form: one user turn, kMathInstruction + "\n\nProblem: " + problem.
std::vector<PromptMessage> MathPromptMeta(std::string_view problem);

// Zero-shot GSM8K: one user turn, kGsm8kTemplate with the question (no system message).
std::vector<PromptMessage> Gsm8kPrompt(std::string_view question);

// Replaces every "{question}" in `text` with `question`; every other character, braces included,
// stays as is (LaTeX is full of braces, so there is no escaping). kInvalidArgument when `text` has
// no placeholder.
Result<std::string> FillTemplate(std::string_view text, std::string_view question);

// A user-defined prompt: [system: `system` when not empty, user: FillTemplate(text, question)].
Result<std::vector<PromptMessage>> CustomPrompt(std::string_view text, std::string_view system,
                                                std::string_view question);

// The messages for a problem under a grid's prompt spec (template math/gsm8k/custom, math form
// sal/meta).
Result<std::vector<PromptMessage>> BuildPrompt(const Problem& problem, const PromptSpec& spec);

// For prompt.chat_template "none" (base models without a chat template): the contents joined by
// "\n\n", the system message first.
std::string PlainPromptText(const std::vector<PromptMessage>& messages);

}  // namespace ttc::experiments
