// The CUDA backend's launch contract, checked on its sources (so it runs in every build, with or
// without nvcc): kernels are launched with programmatic dependent launch, which is exact only if
// every kernel waits for its predecessor before it touches memory (engine/cuda/launch.cuh). So
// every __global__ function's body must start with PdlGate() (after, at most, L2 prefetches of
// weights: PdlPrefetchL2Rows, a hint that reads nothing into the kernel), and no kernel may be
// launched with <<<>>> (Launch() is the one place that sets the attribute and keeps launch
// errors). A kernel added without the gate would race its predecessor only now and then, which no
// GPU test would reliably catch. Kernel attributes are set per device (OncePerDevice), never in a
// process-wide static: a second GPU in the process would be left at the defaults.
#include <gtest/gtest.h>

#include <cctype>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace ttc {
namespace {

namespace fs = std::filesystem;

// The text with comments and string literals blanked (newlines kept), so that "<<<" or
// "__global__" in a comment or a message is not taken for code.
std::string StripCommentsAndStrings(const std::string& s) {
  std::string out = s;
  size_t i = 0;
  while (i < s.size()) {
    if (s.compare(i, 2, "//") == 0) {
      while (i < s.size() && s[i] != '\n') out[i++] = ' ';
    } else if (s.compare(i, 2, "/*") == 0) {
      const size_t end = s.find("*/", i + 2);
      const size_t stop = end == std::string::npos ? s.size() : end + 2;
      for (; i < stop; ++i)
        if (out[i] != '\n') out[i] = ' ';
    } else if (s[i] == '"' || s[i] == '\'') {
      const char q = s[i++];
      while (i < s.size() && s[i] != q) {
        if (s[i] == '\\' && i + 1 < s.size()) out[i++] = ' ';
        if (out[i] != '\n') out[i] = ' ';
        ++i;
      }
      ++i;
    } else {
      ++i;
    }
  }
  return out;
}

int LineOf(const std::string& s, size_t pos) {
  int line = 1;
  for (size_t i = 0; i < pos && i < s.size(); ++i) line += s[i] == '\n';
  return line;
}

struct Kernel {
  std::string file;
  int line;
  // The body's first statement that is not an L2 prefetch of weights (PdlPrefetchL2Rows, the one
  // thing allowed before the gate), whitespace removed.
  std::string first_statement;
};

// Each __global__ definition (a declaration ending in ';' is skipped).
std::vector<Kernel> Kernels(const fs::path& file, const std::string& code) {
  std::vector<Kernel> out;
  for (size_t at = code.find("__global__"); at != std::string::npos;
       at = code.find("__global__", at + 1)) {
    int depth = 0;
    size_t j = at;
    for (; j < code.size(); ++j) {
      const char c = code[j];
      if (c == '(') ++depth;
      if (c == ')') --depth;
      if (depth == 0 && (c == '{' || c == ';')) break;
    }
    if (j >= code.size() || code[j] == ';') continue;
    std::string stmt;
    int parens = 0;
    for (size_t k = j + 1; k < code.size(); ++k) {
      if (!std::isspace(static_cast<unsigned char>(code[k]))) stmt += code[k];
      parens += code[k] == '(' ? 1 : code[k] == ')' ? -1 : 0;
      if (parens > 0 || (code[k] != ';' && code[k] != '{' && code[k] != '}')) continue;
      // A whole statement (or a block opened): a prefetch call lets the scan go on.
      if (code[k] == ';' && stmt.rfind("PdlPrefetchL2Rows(", 0) == 0) {
        stmt.clear();
        continue;
      }
      break;
    }
    out.push_back({file.filename().string(), LineOf(code, at), stmt});
  }
  return out;
}

// Function-local statics whose initialiser sets a kernel attribute or asks for occupancy
// (cudaFuncSetAttribute, cudaOccupancy*), as "file:line". Those belong to the current device's
// context, so a process-wide static would set them up for the first device only; they go through
// OncePerDevice() (engine/cuda/launch.cuh). The scan reads the initialiser's own text: it finds
// the usual shape (a lambda called in place), not a static filled by a helper function, a
// std::call_once or a static flag set in the body, which review has to catch.
std::vector<std::string> DeviceSetupInStatics(const std::string& file, const std::string& code) {
  std::vector<std::string> out;
  for (size_t at = code.find("static"); at != std::string::npos; at = code.find("static", at + 6)) {
    const bool word_before =
        at > 0 && (std::isalnum(static_cast<unsigned char>(code[at - 1])) || code[at - 1] == '_');
    const size_t after = at + 6;
    const bool word_after =
        after < code.size() &&
        (std::isalnum(static_cast<unsigned char>(code[after])) || code[after] == '_');
    if (word_before || word_after) continue;
    // The declaration, to its ';' outside every bracket. A '{' at the top level right after a
    // ')' and before any '=' opens a static function's body: not a variable.
    int depth = 0;
    size_t j = after;
    bool body = false, assigned = false;
    char last = ' ';
    for (; j < code.size(); ++j) {
      const char c = code[j];
      if (depth == 0 && c == ';') break;
      if (depth == 0 && c == '=') assigned = true;
      if (depth == 0 && c == '{' && !assigned && last == ')') {
        body = true;
        break;
      }
      if (c == '(' || c == '[' || c == '{') ++depth;
      if (c == ')' || c == ']' || c == '}') --depth;
      if (!std::isspace(static_cast<unsigned char>(c))) last = c;
    }
    if (body) continue;
    const std::string decl = code.substr(at, j - at);
    if (decl.find("cudaFuncSetAttribute") != std::string::npos ||
        decl.find("cudaOccupancy") != std::string::npos) {
      out.push_back(file + ":" + std::to_string(LineOf(code, at)));
    }
  }
  return out;
}

TEST(CudaSources, EveryKernelStartsWithThePdlGateAndLaunchesThroughLaunch) {
  const fs::path dir = fs::path(TTC_SOURCE_DIR) / "engine" / "cuda";
  ASSERT_TRUE(fs::is_directory(dir)) << dir;
  std::vector<Kernel> kernels;
  int files = 0;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string ext = entry.path().extension().string();
    if (ext != ".cu" && ext != ".cuh") continue;
    std::ifstream in(entry.path());
    ASSERT_TRUE(in) << entry.path();
    std::stringstream buf;
    buf << in.rdbuf();
    const std::string code = StripCommentsAndStrings(buf.str());
    ++files;
    for (size_t at = code.find("<<<"); at != std::string::npos; at = code.find("<<<", at + 3)) {
      ADD_FAILURE() << entry.path().filename().string() << ":" << LineOf(code, at)
                    << ": a <<<>>> launch; use Launch() (engine/cuda/launch.cuh)";
    }
    for (Kernel& k : Kernels(entry.path(), code)) kernels.push_back(std::move(k));
    for (const std::string& at : DeviceSetupInStatics(entry.path().filename().string(), code)) {
      ADD_FAILURE() << at
                    << ": a static sets up a kernel for the first device only; use OncePerDevice()";
    }
  }
  EXPECT_GE(files, 2);
  // The backend has 28 kernels as this test is written; far fewer means the scan broke.
  EXPECT_GE(kernels.size(), 20u);
  for (const Kernel& k : kernels) {
    EXPECT_EQ(k.first_statement, "PdlGate();")
        << k.file << ":" << k.line << ": the kernel's first statement must be PdlGate()";
  }
}

// The scan itself, on text written for it: a kernel without the gate, a declaration, a launch in
// a comment and a string (not launches), and a real one.
TEST(CudaSources, TheScanFindsWhatItLooksFor) {
  const std::string code = StripCommentsAndStrings(
      "// K<<<1, 1>>>() in a comment\n"
      "__global__ void Declared(int);\n"
      "template <int N>\n"
      "__global__ void __launch_bounds__(128, (N > 1 ? 2 : 1)) Good(int x) {\n"
      "  PdlGate();\n"
      "  x += 1;\n"
      "}\n"
      "__global__ void Bad(const char* m) { if (m) return; }\n"
      "__global__ void Prefetching(const short* w, int n) {\n"
      "  PdlPrefetchL2Rows(w + blockIdx.x * n, min(4, n), n * 2, 4096);\n"
      "  PdlGate();\n"
      "}\n"
      "__global__ void ReadsFirst(const float* x, float* y) {\n"
      "  PdlPrefetchL2Rows(x, 1, 0, 128);\n"
      "  y[0] = x[0];\n"
      "  PdlGate();\n"
      "}\n"
      "void F() { puts(\"<<<\"); Bad<<<1, 1>>>(nullptr); }\n");
  const auto kernels = Kernels("x.cu", code);
  ASSERT_EQ(kernels.size(), 4u);
  EXPECT_EQ(kernels[0].first_statement, "PdlGate();");
  EXPECT_EQ(kernels[0].line, 4);
  EXPECT_EQ(kernels[1].first_statement, "if(m)return;");
  EXPECT_EQ(kernels[2].first_statement, "PdlGate();");
  EXPECT_EQ(kernels[3].first_statement, "y[0]=x[0];");
  size_t launches = 0;
  for (size_t at = code.find("<<<"); at != std::string::npos; at = code.find("<<<", at + 3))
    ++launches;
  EXPECT_EQ(launches, 1u);
}

// The per-device check on text written for it: a static that sets an attribute (found), one
// behind OncePerDevice and a static function that sets one (not statics), an occupancy query in
// a static (found), and a static that only reads the environment.
TEST(CudaSources, TheStaticScanFindsDeviceSetup) {
  const std::string code = StripCommentsAndStrings(
      "void A() {\n"
      "  static const bool a = cudaFuncSetAttribute(K, x, 1) == 0;\n"
      "  OncePerDevice([] { return cudaFuncSetAttribute(K, x, 1) == 0; });\n"
      "}\n"
      "static bool Here() { return cudaFuncSetAttribute(K, x, 1) == 0; }\n"
      "int B() {\n"
      "  static const int n = [] {\n"
      "    int c = 0;\n"
      "    cudaOccupancyMaxActiveClusters(&c, K, &cfg);\n"
      "    return c;\n"
      "  }();\n"
      "  static const bool env = getenv(\"static cudaFuncSetAttribute\") != nullptr;\n"
      "  static_assert(sizeof(int) == 4);\n"
      "  return n;\n"
      "}\n");
  const auto found = DeviceSetupInStatics("x.cu", code);
  ASSERT_EQ(found.size(), 2u);
  EXPECT_EQ(found[0], "x.cu:2");
  EXPECT_EQ(found[1], "x.cu:7");
}

}  // namespace
}  // namespace ttc
