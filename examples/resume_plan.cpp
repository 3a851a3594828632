#include "resume_plan.hpp"

#include <algorithm>
#include <filesystem>
#include <map>
#include <sstream>

#include "zeroshard/checkpoint/checkpoint_error.hpp"
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

std::int64_t saved_position(const checkpoint::TrainingState& saved, const std::string& checkpoint, const std::string& key,
                            std::int64_t min, std::int64_t max, const std::string& expected, std::int64_t multiple_of) {
  const auto it = saved.client_state.find(key);
  if (it == saved.client_state.end())
    throw checkpoint::CheckpointError("checkpoint " + checkpoint + " has no client state `" + key + "` (expected " +
                                      expected + "): it was not saved by this example; resume from one that was, "
                                      "or start without --resume");
  if (it->second < min || it->second > max || it->second % multiple_of != 0)
    throw checkpoint::CheckpointError("checkpoint " + checkpoint + ": client state `" + key + "` = " +
                                      std::to_string(it->second) + ", expected " + expected +
                                      " (an edited or foreign checkpoint?); resume from another, or start without --resume");
  return it->second;
}

ResumePlan plan_resume(const std::string& save_dir, int world, std::int64_t micro_batch, bool single_micro_step) {
  // The index alone (checked against the manifest): every rank runs this before Engine::load,
  // which reads and checks the data files, each rank its own.
  const checkpoint::IndexSummary index = checkpoint::read_checked_index(save_dir);
  const auto keys = recorded_keys(index.state.config);
  ResumePlan plan;
  for (const auto& [key, value] : keys)
    if (key.rfind("scheduler.", 0) == 0) plan.overrides.push_back(key + "=" + value);
  const auto saved_micro = keys.find("train_micro_batch_size_per_gpu");
  const auto saved_accumulation = keys.find("gradient_accumulation_steps");
  if (saved_micro == keys.end() || saved_accumulation == keys.end()) {
    plan.note = "the checkpoint does not record its global batch: keeping this run's";
    return plan;
  }
  // The ranks that trained: more than the checkpoint's shards under hybrid sharding.
  const int saved_world = index.state.data_parallel_size > 0 ? index.state.data_parallel_size : index.world_size;
  const std::int64_t global =
      std::stoll(saved_micro->second) * saved_world * std::stoll(saved_accumulation->second);
  // Keep this run's micro-batch if an accumulation count makes up the global batch with it;
  // otherwise the smallest accumulation whose micro-batch is no larger than this run's.
  std::int64_t accumulation = 0, micro = micro_batch;
  if (single_micro_step) {
    if (global % world == 0) {
      accumulation = 1;
      micro = global / world;
    }
  } else if (global % (micro_batch * world) == 0) {
    accumulation = global / (micro_batch * world);
  } else if (global % world == 0) {
    for (std::int64_t a = 1; a <= global / world; ++a)
      if ((global / world) % a == 0 && global / world / a <= micro_batch) {
        accumulation = a;
        micro = global / world / a;
        break;
      }
  }
  if (accumulation == 0)
    throw InvalidArgument("the checkpoint in " + save_dir + " was trained with a global batch of " +
                          std::to_string(global) + " samples per step (micro-batch " + saved_micro->second + " x " +
                          std::to_string(saved_world) + " ranks x accumulation " + saved_accumulation->second +
                          "), which " + std::to_string(world) + " ranks cannot split evenly" +
                          (single_micro_step ? " into one micro-batch each (optimizer.in_backward cannot accumulate)" : "") +
                          ": resume at a world size that divides " + std::to_string(global));
  plan.overrides.push_back("gradient_accumulation_steps=" + std::to_string(accumulation));
  plan.overrides.push_back("train_micro_batch_size_per_gpu=" + std::to_string(micro));
  plan.note = "kept the saved LR schedule and global batch of " + std::to_string(global) + " samples per step (" +
              std::to_string(micro) + " x " + std::to_string(world) + " ranks x accumulation " +
              std::to_string(accumulation) + ")";
  return plan;
}

std::optional<std::string> resume_into(TrainingConfig& config, const std::string& save_dir, bool resume, int world,
                                       const std::vector<std::string>& command_line_overrides) {
  if (!resume || !std::filesystem::exists(std::filesystem::path(save_dir) / "latest")) return std::nullopt;
  const ResumePlan plan = plan_resume(save_dir, world, config.micro_batch_size, config.engine.optimizer_in_backward);
  const auto key_of = [](const std::string& override_text) { return override_text.substr(0, override_text.find('=')); };
  // This run's value of a batch key, as the command line left it.
  const auto batch_value = [&](const std::string& key) {
    return key == "train_micro_batch_size_per_gpu" ? config.micro_batch_size
                                                   : static_cast<std::int64_t>(config.engine.gradient_accumulation_steps);
  };
  std::string kept_from_command_line, conflicting, planned_batch;
  for (const std::string& o : plan.overrides) {
    const std::string key = key_of(o);
    const bool user_set = std::any_of(command_line_overrides.begin(), command_line_overrides.end(),
                                      [&](const std::string& c) { return key_of(c) == key; });
    const bool batch_key = o.rfind("scheduler.", 0) != 0;
    if (batch_key) planned_batch += (planned_batch.empty() ? "" : " and ") + key + " = " + o.substr(key.size() + 1);
    if (!user_set) {
      config.apply_override(o);
    } else if (!batch_key) {
      kept_from_command_line += (kept_from_command_line.empty() ? "" : ", ") + key;
    } else if (std::to_string(batch_value(key)) != o.substr(key.size() + 1)) {
      conflicting += (conflicting.empty() ? "" : " and ") + key + " = " + std::to_string(batch_value(key));
    }
  }
  // Applying one of the plan's batch keys and not the other would train another global batch
  // while the note says it was kept. The plan's pair is made from this run's micro-batch, so
  // it always works.
  if (!conflicting.empty())
    throw InvalidArgument("--resume: " + conflicting + " on the command line would change the global batch the "
                          "checkpoint was trained with; " + planned_batch + " keep it (" + plan.note +
                          "): give those, or start a new run without --resume");
  config.validate();
  if (kept_from_command_line.empty()) return plan.note;
  return plan.note + "; " + kept_from_command_line + " as given on the command line, not as saved";
}

bool schedule_length_given(bool config_file, bool resuming, const std::vector<std::string>& overrides) {
  if (config_file || resuming) return true;
  return std::any_of(overrides.begin(), overrides.end(),
                     [](const std::string& o) { return o.rfind("scheduler.params.total_steps=", 0) == 0; });
}

std::optional<std::string> fit_schedule_to_run(TrainingConfig& config, std::int64_t run_steps, bool length_given) {
  ScheduleConfig& schedule = config.engine.scheduler;
  if (schedule.kind != ScheduleKind::cosine) return std::nullopt;
  if (!length_given) schedule.total_steps = std::max<std::int64_t>(1, run_steps - schedule.warmup_steps);
  const std::int64_t schedule_end = schedule.warmup_steps + schedule.total_steps;
  if (schedule_end >= run_steps) return std::nullopt;
  return "warning: the cosine LR schedule ends at step " + std::to_string(schedule_end) + " but this run trains to step " +
         std::to_string(run_steps) + "; past its end the LR rises back towards its base (PyTorch's CosineAnnealingLR). "
         "To stretch it over the run, pass --scheduler.params.total_steps=" +
         std::to_string(run_steps - schedule.warmup_steps);
}

}  // namespace zs::examples
