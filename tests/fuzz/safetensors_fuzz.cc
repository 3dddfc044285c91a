// libFuzzer target for the safetensors header parser: any byte string must give either a valid file
// whose every tensor view lies inside the image, or a clean error. Seeds:
// tests/fuzz/corpus/safetensors/ (written by the Python safetensors library).
#include <cstddef>
#include <cstdint>
#include <span>

#include "engine/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto file = ttc::engine::SafetensorsFile::FromBuffer(
      std::span<const std::byte>(reinterpret_cast<const std::byte*>(data), size), "fuzz");
  if (!file.ok()) {
    if (file.status().message().empty()) __builtin_trap();  // errors must explain themselves
    return 0;
  }
  const auto& f = **file;
  for (const auto& t : f.tensors()) {
    if (f.Find(t.name) != &t) __builtin_trap();
    if (static_cast<size_t>(t.numel()) * ttc::engine::DTypeSize(t.dtype) != t.nbytes)
      __builtin_trap();
    // Touch every byte (ASan checks it is inside the image) and convert float tensors.
    volatile uint8_t sink = 0;
    for (size_t i = 0; i < t.nbytes; ++i) sink = sink ^ static_cast<uint8_t>(t.data[i]);
    auto values = ttc::engine::ToFloat32(t);
    (void)values;
  }
  // What was parsed must serialise again.
  std::vector<ttc::engine::OwnedTensor> owned;
  for (const auto& t : f.tensors()) {
    owned.push_back({t.name, t.dtype, t.shape, std::vector<std::byte>(t.data, t.data + t.nbytes)});
  }
  auto image = ttc::engine::SerializeSafetensors(owned, f.metadata());
  if (!image.ok()) __builtin_trap();
  auto again = ttc::engine::SafetensorsFile::FromBuffer(*image, "fuzz-again");
  if (!again.ok() || again.value()->tensors().size() != f.tensors().size()) __builtin_trap();
  return 0;
}
