// A model's weights as one name -> tensor table over its safetensors files: a single
// `model.safetensors`, or a sharded checkpoint described by `model.safetensors.index.json`
// ({"weight_map": {tensor: shard file}}). Opening validates every shard (see engine/safetensors.h)
// and that every tensor the index maps exists in its shard. Lookups return clear errors
// ("<dir>/model.safetensors: missing tensor model.layers.3.mlp.up_proj.weight"). Thread-safety:
// immutable after Open; any number of threads may read it concurrently. TensorViews live as long as
// the Checkpoint (moving the Checkpoint keeps them valid).
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/result.h"
#include "engine/safetensors.h"

namespace ttc::engine {

class Checkpoint {
 public:
  // `path` is a model folder (with model.safetensors.index.json, else model.safetensors) or one
  // .safetensors file. Errors: kNotFound (no weights in the folder, missing shard), kCorrupt (bad
  // index or shard), kIo.
  static Result<Checkpoint> Open(const std::filesystem::path& path);

  Checkpoint(Checkpoint&&) = default;
  Checkpoint& operator=(Checkpoint&&) = default;

  // The tensor, or kNotFound "<source>: missing tensor NAME".
  Result<const TensorView*> Get(std::string_view name) const;
  // The tensor with its shape checked: kCorrupt "<file>: tensor NAME has shape [a, b], expected [c,
  // d]".
  Result<const TensorView*> Get(std::string_view name,
                                const std::vector<int64_t>& expected_shape) const;
  bool Has(std::string_view name) const;
  // Every tensor name, sorted.
  std::vector<std::string> names() const;
  size_t size() const { return tensors_.size(); }

  // The file the tensor came from (for messages); empty when unknown.
  std::string FileOf(std::string_view name) const;
  // What the checkpoint was opened from: the index file or the single .safetensors path.
  const std::string& source() const { return source_; }
  const std::vector<std::unique_ptr<SafetensorsFile>>& files() const { return files_; }

 private:
  Checkpoint() = default;

  struct Entry {
    const TensorView* view;
    size_t file;  // index into files_
  };
  std::string source_;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::unordered_map<std::string, Entry> tensors_;
};

}  // namespace ttc::engine
