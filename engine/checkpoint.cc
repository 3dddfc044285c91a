#include "engine/checkpoint.h"

#include <algorithm>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

namespace ttc::engine {
namespace {

constexpr const char* kSingleFile = "model.safetensors";
constexpr const char* kIndexFile = "model.safetensors.index.json";
// Index files list every tensor once; the real 3B index is ~30 KB. Anything huge is not an index.
constexpr uintmax_t kMaxIndexBytes = 64u << 20;

// A shard name must stay inside the checkpoint folder: no absolute paths, no "..".
bool IsSafeRelativePath(const std::string& name) {
  if (name.empty()) return false;
  std::filesystem::path p(name);
  if (p.is_absolute() || p.has_root_name() || p.has_root_directory()) return false;
  for (const auto& part : p) {
    if (part == "..") return false;
  }
  return true;
}

}  // namespace

Result<Checkpoint> Checkpoint::Open(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec))
    return NotFound("{}: no such file or folder", path.string());

  Checkpoint ckpt;
  if (!std::filesystem::is_directory(path, ec)) {
    // One .safetensors file.
    TTC_ASSIGN_OR_RETURN(auto file, SafetensorsFile::Open(path));
    ckpt.source_ = path.string();
    for (const TensorView& t : file->tensors()) ckpt.tensors_.emplace(t.name, Entry{&t, 0});
    ckpt.files_.push_back(std::move(file));
    return ckpt;
  }

  const std::filesystem::path index_path = path / kIndexFile;
  const std::filesystem::path single_path = path / kSingleFile;
  if (!std::filesystem::exists(index_path, ec)) {
    if (!std::filesystem::exists(single_path, ec)) {
      return NotFound("{}: no {} or {} in the model folder", path.string(), kSingleFile,
                      kIndexFile);
    }
    return Open(single_path);
  }

  // Sharded: read the index.
  ckpt.source_ = index_path.string();
  const std::string& src = ckpt.source_;
  auto index_size = std::filesystem::file_size(index_path, ec);
  if (ec) return IoError("{}: cannot stat: {}", src, ec.message());
  if (index_size > kMaxIndexBytes)
    return Corrupt("{}: {} bytes is too large for an index", src, index_size);
  std::ifstream in(index_path, std::ios::binary);
  if (!in) return IoError("{}: cannot open", src);
  std::stringstream text;
  text << in.rdbuf();
  nlohmann::json index;
  try {
    index = nlohmann::json::parse(text.str());
  } catch (const nlohmann::json::exception& e) {
    return Corrupt("{}: malformed JSON: {}", src, e.what());
  }
  if (!index.is_object()) return Corrupt("{}: not a JSON object", src);
  auto wm = index.find("weight_map");
  if (wm == index.end() || !wm->is_object())
    return Corrupt("{}: missing or non-object 'weight_map'", src);
  if (wm->empty()) return Corrupt("{}: 'weight_map' is empty", src);

  std::map<std::string, size_t> shard_of;  // shard file name -> index in files_
  for (auto it = wm->begin(); it != wm->end(); ++it) {
    const std::string& tensor = it.key();
    if (!it.value().is_string())
      return Corrupt("{}: tensor {}: shard name is not a string", src, tensor);
    const std::string& shard = it.value().get_ref<const std::string&>();
    if (!IsSafeRelativePath(shard)) {
      return Corrupt("{}: tensor {}: shard '{}' is not a file name inside the model folder", src,
                     tensor, shard);
    }
    auto found = shard_of.find(shard);
    if (found == shard_of.end()) {
      const std::filesystem::path shard_path = path / shard;
      if (!std::filesystem::exists(shard_path, ec)) {
        return NotFound("{}: tensor {}: shard {} not found", src, tensor, shard_path.string());
      }
      TTC_ASSIGN_OR_RETURN(auto file, SafetensorsFile::Open(shard_path));
      found = shard_of.emplace(shard, ckpt.files_.size()).first;
      ckpt.files_.push_back(std::move(file));
    }
    const SafetensorsFile& file = *ckpt.files_[found->second];
    const TensorView* view = file.Find(tensor);
    if (view == nullptr) {
      return Corrupt("{}: tensor {} is mapped to {}, which has no such tensor", src, tensor,
                     file.path());
    }
    ckpt.tensors_.emplace(tensor, Entry{view, found->second});
  }
  return ckpt;
}

Result<const TensorView*> Checkpoint::Get(std::string_view name) const {
  auto it = tensors_.find(std::string(name));
  if (it == tensors_.end()) return NotFound("{}: missing tensor {}", source_, name);
  return it->second.view;
}

Result<const TensorView*> Checkpoint::Get(std::string_view name,
                                          const std::vector<int64_t>& expected_shape) const {
  auto it = tensors_.find(std::string(name));
  if (it == tensors_.end()) return NotFound("{}: missing tensor {}", source_, name);
  const TensorView* view = it->second.view;
  if (view->shape != expected_shape) {
    return Corrupt("{}: tensor {} has shape {}, expected {}", files_[it->second.file]->path(), name,
                   ShapeToString(view->shape), ShapeToString(expected_shape));
  }
  return view;
}

bool Checkpoint::Has(std::string_view name) const { return tensors_.count(std::string(name)) != 0; }

std::vector<std::string> Checkpoint::names() const {
  std::vector<std::string> out;
  out.reserve(tensors_.size());
  for (const auto& [name, entry] : tensors_) out.push_back(name);
  std::sort(out.begin(), out.end());
  return out;
}

std::string Checkpoint::FileOf(std::string_view name) const {
  auto it = tensors_.find(std::string(name));
  return it == tensors_.end() ? std::string() : files_[it->second.file]->path();
}

}  // namespace ttc::engine
