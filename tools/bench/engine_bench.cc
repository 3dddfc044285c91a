// `ttc bench` as a standalone program (build/bench/engine_bench bench
// ...): the same command sources compiled without the rest of the CLI, so the engine benchmark
// builds and runs on a GPU machine even while other commands are mid-change or lack dependencies.
// Usage and output: exactly those of `ttc bench` (tools/cli/bench.cc).
#include "tools/cli/bench.cc"    // NOLINT(build/include): the command's translation unit
#include "tools/cli/command.cc"  // NOLINT(build/include)
#include "tools/main.cc"         // NOLINT(build/include): main()
