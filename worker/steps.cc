#include <string>
#include <vector>

#include "worker/runner.h"

namespace ttc::worker {

std::vector<std::string> SplitSteps(const std::string& completion) {
  // Python's str.split("\n\n"): non-overlapping, left to right, empty pieces kept.
  std::vector<std::string> steps;
  size_t start = 0;
  while (true) {
    size_t pos = completion.find("\n\n", start);
    if (pos == std::string::npos) {
      steps.push_back(completion.substr(start));
      return steps;
    }
    steps.push_back(completion.substr(start, pos - start));
    start = pos + 2;
  }
}

}  // namespace ttc::worker
