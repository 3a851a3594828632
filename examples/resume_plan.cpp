#include "resume_plan.hpp"

#include <map>
#include <sstream>

#include "zeroshard/checkpoint/checkpoint_reader.hpp"
#include "zeroshard/error.hpp"

namespace zs::examples {

namespace {

// The "key = value" lines a checkpoint records (Engine::save).
std::map<std::string, std::string> recorded_keys(const std::string& text) {
  std::map<std::string, std::string> keys;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    const auto equals = line.find(" = ");
    if (equals != std::string::npos) keys[line.substr(0, equals)] = line.substr(equals + 3);
  }
  return keys;
}

}  // namespace

ResumePlan plan_resume(const std::string& save_dir, int world, std::int64_t micro_batch) {
  const checkpoint::CheckpointReader reader(save_dir);
  const auto keys = recorded_keys(reader.state().config);
  ResumePlan plan;
  for (const auto& [key, value] : keys)
    if (key.rfind("scheduler.", 0) == 0) plan.overrides.push_back(key + "=" + value);
  const auto saved_micro = keys.find("train_micro_batch_size_per_gpu");
  const auto saved_accumulation = keys.find("gradient_accumulation_steps");
  if (saved_micro == keys.end() || saved_accumulation == keys.end()) {
    plan.note = "the checkpoint does not record its global batch: keeping this run's";
    return plan;
  }
  const std::int64_t global =
      std::stoll(saved_micro->second) * reader.world_size() * std::stoll(saved_accumulation->second);
  const std::int64_t per_micro_step = micro_batch * world;
  if (global % per_micro_step != 0)
    throw InvalidArgument("the checkpoint in " + save_dir + " was trained with a global batch of " +
                          std::to_string(global) + " samples per step (micro-batch " + saved_micro->second + " x " +
                          std::to_string(reader.world_size()) + " ranks x accumulation " + saved_accumulation->second +
                          "); " + std::to_string(world) + " ranks x micro-batch " + std::to_string(micro_batch) +
                          " cannot keep it with any accumulation count: use a world size and "
                          "train_micro_batch_size_per_gpu whose product divides " + std::to_string(global));
  const std::int64_t accumulation = global / per_micro_step;
  plan.overrides.push_back("gradient_accumulation_steps=" + std::to_string(accumulation));
  plan.note = "kept the saved LR schedule and global batch of " + std::to_string(global) + " samples per step (" +
              std::to_string(micro_batch) + " x " + std::to_string(world) + " ranks x accumulation " +
              std::to_string(accumulation) + ")";
  return plan;
}

}  // namespace zs::examples
