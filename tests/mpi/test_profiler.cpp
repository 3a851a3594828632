// The timeline profiler end to end (issue 18): an engine with profiler.enabled writes, on rank
// 0, one Chrome trace of the recorded steps with one process per rank and the spans and
// collectives the docs promise; parsed back here with our JSON parser (tests/examples/
// profiler_trace.sh checks an example's trace with Python's json module).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>

#include "../support/engine_test_model.hpp"
#include "../support/mpi_test.hpp"
#include "../support/shared_temp_dir.hpp"
#include "zeroshard/comm/communicator.hpp"
#include "zeroshard/runtime/engine.hpp"
#include "zeroshard/runtime/json.hpp"
#include "zeroshard/timeline.hpp"

namespace zs {
namespace {

using runtime::JsonValue;

class ProfilerTest : public testing::MpiTest {};

const JsonValue* member(const JsonValue& object, const std::string& key) {
  for (const auto& [k, v] : object.object)
    if (k == key) return &v;
  return nullptr;
}

// What a trace holds, per rank (pid): process and thread names, span and collective names.
struct TraceSummary {
  std::map<int, std::string> processes;
  std::map<int, std::set<std::string>> threads, names;
  std::map<int, int> begins, ends;
  double earliest = 1e300;
  std::string steps;
};

TraceSummary summarize(const std::string& path) {
  std::ifstream file(path);
  std::stringstream text;
  text << file.rdbuf();
  const JsonValue trace = runtime::parse_json(text.str(), path);
  TraceSummary s;
  s.steps = member(*member(trace, "otherData"), "steps")->string;
  for (const JsonValue& e : member(trace, "traceEvents")->array) {
    const int pid = static_cast<int>(member(e, "pid")->number);
    const std::string ph = member(e, "ph")->string, name = member(e, "name")->string;
    if (ph == "M" && name == "process_name") s.processes[pid] = member(*member(e, "args"), "name")->string;
    if (ph == "M" && name == "thread_name") s.threads[pid].insert(member(*member(e, "args"), "name")->string);
    if (ph == "X" || ph == "b") s.names[pid].insert(name);
    if (ph == "b") ++s.begins[pid];
    if (ph == "e") ++s.ends[pid];
    if (ph != "M") s.earliest = std::min(s.earliest, member(e, "ts")->number);
  }
  return s;
}

// ZeRO stage `stage` with the profiler recording steps [first, end) into `output`.
EngineConfig profiled(int stage, std::int64_t first, std::int64_t end, const std::string& output) {
  EngineConfig config;
  config.stage = stage;
  config.profiler = {.enabled = true, .first_step = first, .end_step = end, .output = output};
  return config;
}

TEST_F(ProfilerTest, OneTraceWithATrackPerRankAndTheStepsSpans) {
  testing::SharedTempDir dir;
  Communicator comm;
  auto model = testing::make_model(0);
  EngineConfig config = profiled(3, 1, 4, dir.path() + "/trace");
  config.gradient_clipping = 1e-3;  // always clips (inside the "optimizer update" span)
  config.checkpoint.async = true;   // the writer thread gets a track
  Engine engine(*model, config, comm);
  testing::run_steps(engine, 0, 2);
  engine.save(dir.path() + "/checkpoints");  // inside the range: written while step 2 runs
  testing::run_steps(engine, 2, 1);
  engine.wait_for_checkpoint();  // the writer thread's spans and the commit fall inside the range
  EXPECT_EQ(engine.profiler_trace(), "");
  testing::run_steps(engine, 3, 2);  // step 3 ends the range: the trace is written
  const std::string path = dir.path() + "/trace.json";
  EXPECT_EQ(engine.profiler_trace(), path);
  EXPECT_EQ(engine.finish_profiler(), path);  // nothing more to write
  if (comm.rank() == 0) {
    ASSERT_TRUE(std::filesystem::exists(path));
    const TraceSummary s = summarize(path);
    EXPECT_EQ(s.steps, "1:4");
    EXPECT_EQ(static_cast<int>(s.processes.size()), comm.size());
    EXPECT_GE(s.earliest, -1000.0) << "events more than 1 ms before recording started: clocks not aligned";
    for (int r = 0; r < comm.size(); ++r) {
      EXPECT_EQ(s.processes.at(r).rfind("rank " + std::to_string(r) + " (", 0), 0u) << s.processes.at(r);
      EXPECT_TRUE(s.threads.at(r).count("training"));
      EXPECT_TRUE(s.threads.at(r).count("checkpoint writer")) << "rank " << r;
      for (const char* name : {"forward unit 0", "forward unit 1", "backward unit 0", "backward unit 2", "step",
                               "gradient norm", "optimizer update", "wait unit 0",
                               "all_reduce_scalars gradient norm", "checkpoint save", "checkpoint build images",
                               "checkpoint write files", "checkpoint commit"})
        EXPECT_TRUE(s.names.at(r).count(name)) << "rank " << r << " has no '" << name << "'";
      // One rank runs stage 3 as stage 0 (nothing to gather or scatter): no such spans then.
      for (const char* name : {"all_gather unit 0", "reduce_scatter unit 1"})
        EXPECT_EQ(s.names.at(r).count(name), comm.size() > 1 ? 1u : 0u) << "rank " << r << ": '" << name << "'";
      EXPECT_GT(s.begins.at(r), 0);
      EXPECT_EQ(s.begins.at(r), s.ends.at(r)) << "unpaired async events on rank " << r;
    }
  }
}

TEST_F(ProfilerTest, ARunThatEndsInsideTheRangeWritesOnFinish) {
  testing::SharedTempDir dir;
  Communicator comm;
  auto model = testing::make_model(0);
  Engine engine(*model, profiled(1, 2, 100, dir.path() + "/short.json"), comm);
  testing::run_steps(engine, 0, 4);
  EXPECT_EQ(engine.profiler_trace(), "");
  const std::string path = engine.finish_profiler();
  EXPECT_EQ(path, dir.path() + "/short.json");
  if (comm.rank() == 0) {
    const TraceSummary s = summarize(path);
    EXPECT_EQ(s.steps, "2:100");
    EXPECT_EQ(static_cast<int>(s.processes.size()), comm.size());
    EXPECT_TRUE(s.names.at(0).count("forward unit 0"));
    EXPECT_EQ(s.names.at(0).count("all_gather unit 0"), comm.size() > 1 ? 1u : 0u)
        << "stage 1 gathers updated parameters (not at world size 1)";
  }
}

TEST_F(ProfilerTest, DisabledRecordsNothing) {
  Communicator comm;
  auto model = testing::make_model(0);
  Engine engine(*model, EngineConfig{}, comm);
  testing::run_steps(engine, 0, 2);
  EXPECT_FALSE(timeline::enabled());
  EXPECT_EQ(engine.finish_profiler(), "");
}

}  // namespace
}  // namespace zs
