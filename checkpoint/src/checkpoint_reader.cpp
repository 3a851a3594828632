#include "zeroshard/checkpoint/checkpoint_reader.hpp"

#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "zeroshard/checkpoint/checkpoint_directory.hpp"
#include "zeroshard/checkpoint/checkpoint_error.hpp"
#include "zeroshard/sharding/fragment_map.hpp"

namespace zs::checkpoint {

namespace fs = std::filesystem;

namespace {

std::string or_none(const std::string& id) { return id.empty() ? std::string("none") : id; }

bool same_units(const std::vector<ShardFile::Unit>& a, const std::vector<ShardFile::Unit>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t u = 0; u < a.size(); ++u) {
    const sharding::FlatLayout &x = a[u].layout, &y = b[u].layout;
    auto buffers_a = a[u].buffers, buffers_b = b[u].buffers;
    std::sort(buffers_a.begin(), buffers_a.end());
    std::sort(buffers_b.begin(), buffers_b.end());
    if (a[u].name != b[u].name || buffers_a != buffers_b || x.world_size() != y.world_size() ||
        x.alignment() != y.alignment() || x.shard_numel() != y.shard_numel() || x.tensors().size() != y.tensors().size())
      return false;
    for (std::size_t t = 0; t < x.tensors().size(); ++t)
      if (!(x.tensors()[t].spec == y.tensors()[t].spec)) return false;
  }
  return true;
}

}  // namespace

std::vector<std::string> data_file_differences(const ShardFile& file, const std::string& name, const IndexSummary& index,
                                               const std::vector<ShardFile::Unit>& expected_units,
                                               const std::string& expected_from) {
  std::vector<std::string> differences;
  if (file.identity().save_id != index.identity.save_id)
    differences.push_back("save id " + or_none(file.identity().save_id) + " differs from the index's " +
                          or_none(index.identity.save_id));
  const TrainingState &mine = file.state(), &indexed = index.state;
  if (mine.step != indexed.step || mine.micro_step != indexed.micro_step)
    differences.push_back("step " + std::to_string(mine.step) + " (micro-step " + std::to_string(mine.micro_step) +
                          ") differs from the index's step " + std::to_string(indexed.step) + " (micro-step " +
                          std::to_string(indexed.micro_step) + ")");
  if (mine.stage != indexed.stage)
    differences.push_back("stage " + std::to_string(mine.stage) + " differs from the index's " + std::to_string(indexed.stage));
  if (mine.optimizer != indexed.optimizer)
    differences.push_back("optimizer '" + mine.optimizer + "' differs from the index's '" + indexed.optimizer + "'");
  if (mine.config != indexed.config) differences.push_back("its training configuration differs from the index's");
  if (mine.loss_scaler != indexed.loss_scaler) differences.push_back("its fp16 loss scaler state differs from the index's");
  if (mine.client_state != indexed.client_state) {
    std::string keys;  // the keys whose values differ, so the user sees which
    for (const auto& [key, value] : mine.client_state)
      if (!indexed.client_state.count(key) || indexed.client_state.at(key) != value) keys += (keys.empty() ? "" : ", ") + key;
    for (const auto& [key, value] : indexed.client_state)
      if (!mine.client_state.count(key)) keys += (keys.empty() ? "" : ", ") + key;
    differences.push_back("client state (" + keys + ") differs from the index's");
  }
  if (file.world_size() != index.world_size)
    differences.push_back("world size " + std::to_string(file.world_size()) + " differs from the index's " +
                          std::to_string(index.world_size));
  if (file.format_version() != index.format_version)
    differences.push_back("format version " + std::to_string(file.format_version()) + " differs from the index's " +
                          std::to_string(index.format_version));
  std::vector<int> ranks;  // those the index says `name` holds
  for (int r = 0; r < static_cast<int>(index.shard_files.size()); ++r)
    if (index.shard_files[r] == name) ranks.push_back(r);
  const bool contiguous = !ranks.empty() && ranks.back() - ranks.front() + 1 == static_cast<int>(ranks.size());
  if (!contiguous || file.first_rank() != ranks.front() || file.rank_count() != static_cast<int>(ranks.size()))
    differences.push_back(
        "holds ranks [" + std::to_string(file.first_rank()) + ", " + std::to_string(file.first_rank() + file.rank_count()) +
        "), the index maps " +
        (ranks.empty() ? std::string("no rank")
                       : "ranks " + std::to_string(ranks.front()) + "-" + std::to_string(ranks.back())) +
        " to it");
  if (!expected_units.empty() && !same_units(file.units(), expected_units))
    differences.push_back("its units (tensors, layouts or buffers) differ from " + expected_from + "'s");
  return differences;
}

namespace {
std::string joined(const std::vector<std::string>& lines) {
  std::string text;
  for (std::size_t i = 0; i < lines.size(); ++i) text += (i ? "; " : "") + lines[i];
  return text;
}
}  // namespace

std::string index_disagrees_message(const std::string& data_file_path, const std::string& index_path,
                                    const std::vector<std::string>& differences) {
  return "checkpoint index " + index_path + " and data file " + data_file_path +
         " disagree on which elements belong to which tensor: " + joined(differences) +
         ". One of them was edited or corrupted: restore both from the same save, or load another tag";
}

std::string mixed_saves_message(const std::string& data_file_path, const std::string& index_path,
                                const std::vector<std::string>& differences) {
  return "checkpoint shard " + data_file_path + " belongs to another save than " + index_path +
         " (files of two saves mixed): " + joined(differences) + ". Restore the file from the same save, or load another tag";
}

namespace {
// The index, checked against the manifest before HDF5 opens it, and the manifest against it.
IndexSummary checked_index(const std::string& tag_dir, TagFiles& files) {
  files.require_intact(kIndexFileName);
  IndexSummary index = read_index_summary((fs::path(tag_dir) / kIndexFileName).string());
  files.require_matches_index(index);
  return index;
}
}  // namespace

IndexSummary read_checked_index(const std::string& dir, const std::string& tag) {
  const std::string tag_dir = tag_directory(dir, resolve_tag(dir, tag));
  TagFiles files(tag_dir);
  return checked_index(tag_dir, files);
}

CheckpointReader::CheckpointReader(const std::string& dir, const std::string& tag, int probe_rank) : dir_(dir) {
  tag_ = resolve_tag(dir, tag);
  tag_dir_ = tag_directory(dir, tag_);
  files_ = std::make_unique<TagFiles>(tag_dir_);
  index_ = checked_index(tag_dir_, *files_);
  if (probe_rank == 0 && !files_->has_manifest())
    std::fprintf(stderr, "zeroshard: warning: %s\n", files_->unchecked_warning().c_str());
  for (const std::string& name : index_.shard_files)
    if (!fs::exists(fs::path(tag_dir_) / name))
      throw CheckpointError("checkpoint shard " + (fs::path(tag_dir_) / name).string() +
                            " is missing (the checkpoint was saved by " + std::to_string(index_.world_size) +
                            " ranks, mode " + to_string(index_.mode) + "): restore the file or load another tag");
  // Each rank opens the shard with its own number (modulo the saved world size), so every
  // shard's header is checked by someone; layouts are the same in every shard (every file
  // opened later is checked against these).
  const int probe = probe_rank % index_.world_size;
  ShardFile& mine = shard(probe);
  units_ = mine.units();
  units_from_ = index_.shard_files.at(probe);
  if (units_.empty()) throw CheckpointError("checkpoint " + tag_dir_ + " holds no units");
  const std::string index_path = (fs::path(tag_dir_) / kIndexFileName).string();
  const std::vector<std::string> disagreements = index_layout_differences(index_path, index_, units_);
  if (!disagreements.empty()) throw CheckpointError(index_disagrees_message(mine.path(), index_path, disagreements));
  buffers_ = units_.front().buffers;
  auto expected = buffers_;
  std::sort(expected.begin(), expected.end());
  for (std::size_t u = 0; u < units_.size(); ++u) {
    auto sorted = units_[u].buffers;
    std::sort(sorted.begin(), sorted.end());
    if (sorted != expected)
      throw CheckpointError("checkpoint shard " + mine.path() + ": unit " + units_[u].name +
                            " holds different buffers than the first unit (corrupt file?)");
    for (const auto& slot : units_[u].layout.tensors()) locations_[slot.spec.name] = {u, slot.offset};
  }
}

CheckpointReader::~CheckpointReader() = default;

ShardFile& CheckpointReader::shard(int rank) {
  // Opened once per file: in shared-file mode every rank's slices are in the same one.
  const std::string& name = index_.shard_files.at(rank);
  auto it = open_shards_.find(name);
  if (it == open_shards_.end()) {
    files_->require_intact(name);  // before HDF5 sees a byte of it
    auto file = std::make_unique<ShardFile>((fs::path(tag_dir_) / name).string());
    if (files_->has_manifest()) file->set_whole_file_checked();  // its block CRCs would check the same bytes again
    const std::vector<std::string> differences = data_file_differences(*file, name, index_, units_, units_from_);
    if (!differences.empty())
      throw CheckpointError(mixed_saves_message(file->path(), (fs::path(tag_dir_) / kIndexFileName).string(), differences));
    it = open_shards_.emplace(name, std::move(file)).first;
  }
  return *it->second;
}

std::vector<sharding::TensorSpec> CheckpointReader::tensors() const {
  std::vector<sharding::TensorSpec> specs;
  for (const auto& unit : units_)
    for (const auto& slot : unit.layout.tensors()) specs.push_back(slot.spec);
  return specs;
}

void CheckpointReader::require_same_tensors(const std::vector<sharding::TensorSpec>& model) const {
  std::vector<std::string> differences;
  std::map<std::string, const sharding::TensorSpec*, std::less<>> in_model;
  for (const auto& spec : model) in_model[spec.name] = &spec;
  for (const auto& spec : model) {
    auto it = locations_.find(spec.name);
    if (it == locations_.end()) {
      differences.push_back("'" + spec.name + "' [" + shape_to_text(spec.shape) + "] is in the model but not in the checkpoint");
      continue;
    }
    const auto& saved = units_[it->second.unit].layout.find(spec.name).spec;
    if (saved.shape != spec.shape)
      differences.push_back("'" + spec.name + "' has shape [" + shape_to_text(saved.shape) + "] in the checkpoint but [" +
                            shape_to_text(spec.shape) + "] in the model");
  }
  for (const auto& [name, location] : locations_)
    if (!in_model.count(name)) differences.push_back("'" + name + "' is in the checkpoint but not in the model");
  if (differences.empty()) return;
  std::string message = "checkpoint " + tag_dir_ + " was saved from a different model (" +
                        std::to_string(differences.size()) + " difference(s)):";
  for (const std::string& d : differences) message += "\n  - " + d;
  message += "\n  Build the same model as the run that saved it, or load a checkpoint of this model.";
  throw CheckpointError(message);
}

std::string CheckpointReader::rng_state_of(int rank) { return shard(rank).rng_state(rank); }

void CheckpointReader::read(const sharding::FlatLayout& target, const std::string& buffer, std::int64_t begin,
                            std::span<float> out) {
  if (std::find(buffers_.begin(), buffers_.end(), buffer) == buffers_.end())
    throw CheckpointError("checkpoint " + tag_dir_ + " holds no '" + buffer + "' state (it was saved with optimizer '" +
                          index_.state.optimizer + "'): load it with the same optimizer");
  std::fill(out.begin(), out.end(), 0.0f);
  const std::int64_t end = begin + static_cast<std::int64_t>(out.size());
  for (const sharding::TensorSlot& slot : target.tensors()) {
    const std::int64_t from = std::max(begin, slot.offset), to = std::min(end, slot.end());
    if (from >= to) continue;
    auto it = locations_.find(slot.spec.name);
    if (it == locations_.end())
      throw CheckpointError("checkpoint " + tag_dir_ + " has no tensor '" + slot.spec.name + "'");
    const Location& source = it->second;
    const std::int64_t shard_numel = units_[source.unit].layout.shard_numel();
    for (const sharding::ReshardPiece& piece :
         sharding::split_at_shard_edges(source.offset + (from - slot.offset), to - from, shard_numel))
      shard(piece.source_rank)
          .read(piece.source_rank, source.unit, buffer, piece.source_offset, out.subspan(from - begin + piece.target_offset, piece.length));
  }
}

}  // namespace zs::checkpoint
