#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "../../examples/fashion_mnist_data.hpp"
#include "zeroshard/error.hpp"
#include "zeroshard/runtime/config.hpp"
#include "zeroshard/runtime/json.hpp"

namespace zs {
namespace {

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const InvalidArgument& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(Config, FileAndOverridesApplyInOrder) {
  TrainingConfig c;
  c.apply_json(R"({"zero_optimization": {"stage": 2}, "optimizer": {"type": "sgd",
                  "params": {"lr": 0.5, "momentum": 0.9, "nesterov": true, "betas": [0.8, 0.95]}},
                  "scheduler": {"type": "cosine_restarts", "params": {"restart_period": 7}}})", "test.json");
  c.apply_override("optimizer.params.lr=0.25");
  c.apply_override("gradient_accumulation_steps=4");
  c.validate();
  EXPECT_EQ(c.engine.stage, 2);
  EXPECT_EQ(c.engine.optimizer.kind, OptimizerKind::sgd);
  EXPECT_EQ(c.engine.optimizer.lr, 0.25);
  EXPECT_TRUE(c.engine.optimizer.nesterov);
  EXPECT_EQ(c.engine.optimizer.beta2, 0.95);
  EXPECT_EQ(c.engine.scheduler.kind, ScheduleKind::cosine_restarts);
  EXPECT_EQ(c.engine.scheduler.restart_period, 7);
  EXPECT_EQ(c.engine.gradient_accumulation_steps, 4);
}

TEST(Config, BadInputNamesTheKey) {
  TrainingConfig c;
  EXPECT_NE(error_of([&] { c.apply_json(R"({"zero_optimisation": {"stage": 3}})", "a.json"); })
                .find("unknown configuration key 'zero_optimisation.stage'"),
            std::string::npos);
  EXPECT_NE(error_of([&] { c.apply_json(R"({"zero_optimization": {"stage": "3"}})", "a.json"); })
                .find("zero_optimization.stage must be an integer, not a string"),
            std::string::npos);
  EXPECT_NE(error_of([&] { c.apply_json(R"({"seed": 1.5})", "a.json"); }).find("seed must be an integer"),
            std::string::npos);
  EXPECT_NE(error_of([&] { c.apply_json("{\n  \"seed\": 1,\n  \"seed\": 2}", "a.json"); }).find("a.json:3:"),
            std::string::npos);
  EXPECT_NE(error_of([&] { c.apply_json("{\"seed\": 1", "b.json"); }).find("b.json:1:"), std::string::npos);
  EXPECT_NE(error_of([&] { c.apply_override("optimizer.params.lr=fast"); }).find("optimizer.params.lr must be a number"),
            std::string::npos);
  EXPECT_NE(error_of([&] { c.apply_override("optimizer.type=lamb"); }).find("optimizer.type"), std::string::npos);
  EXPECT_NE(error_of([&] { c.apply_override("stage"); }).find("key=value"), std::string::npos);
  TrainingConfig impossible;
  impossible.apply_override("zero_optimization.stage=5");
  EXPECT_NE(error_of([&] { impossible.validate(); }).find("zero_optimization.stage = 5"), std::string::npos);
  TrainingConfig shared_at_stage0;
  shared_at_stage0.apply_override("zero_optimization.node_shared_parameters=true");
  EXPECT_NE(error_of([&] { shared_at_stage0.validate(); }).find("node_shared_parameters = true needs stage 1, 2 or 3"),
            std::string::npos);
  TrainingConfig shared_bf16 = shared_at_stage0;
  shared_bf16.apply_override("zero_optimization.stage=3");
  shared_bf16.apply_override("bf16.enabled=true");
  EXPECT_NE(error_of([&] { shared_bf16.validate(); }).find("node_shared_parameters = true is float32 only"),
            std::string::npos);
  TrainingConfig negative;
  negative.apply_override("train_micro_batch_size_per_gpu=0");
  EXPECT_NE(error_of([&] { negative.validate(); }).find("train_micro_batch_size_per_gpu"), std::string::npos);
  EXPECT_NE(error_of([&] { (void)load_training_config("/nonexistent/zs.json", {}); }).find("/nonexistent/zs.json"),
            std::string::npos);
}

TEST(Config, EveryKeyIsDocumented) {
  std::ifstream file(ZS_SOURCE_DIR "/docs/config.md");
  ASSERT_TRUE(file) << "docs/config.md is missing";
  std::stringstream text;
  text << file.rdbuf();
  for (const ConfigKeyDoc& doc : config_documentation())
    EXPECT_NE(text.str().find("`" + doc.key + "`"), std::string::npos) << doc.key << " is not in docs/config.md";
}

TEST(FashionMnist, MissingFilesNameTheFixAndForeignFilesAreRejected) {
  EXPECT_NE(error_of([] { (void)examples::load_fashion_mnist("/nonexistent", "train"); }).find("dataset-fashion-mnist"),
            std::string::npos);
  const std::string dir = ::testing::TempDir() + "/zs_fmnist_bad";
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/train-images-idx3-ubyte.gz") << "not an idx file at all";
  std::ofstream(dir + "/train-labels-idx1-ubyte.gz") << "nor this";
  EXPECT_NE(error_of([&] { (void)examples::load_fashion_mnist(dir, "train"); }).find("bad magic number"),
            std::string::npos);
}

// Issue 11, item 7: --gradient_accumulation_steps=4294967298 trained with 2 and
// --zero_optimization.stage=4294967299 with stage 3 (32-bit truncation). Every integer key
// now either holds the value exactly or refuses it naming the key and the range.
// Issue 14, the front door: a hostile nesting depth is refused (it overflowed the stack at
// 30,000), valid \u escapes (surrogate pairs too) are read as UTF-8, a directory given as the
// configuration file is named as such.
TEST(Json, DepthIsLimitedAndUnicodeEscapesAreRead) {
  const std::string deep = std::string(30000, '[') + std::string(30000, ']');
  EXPECT_NE(error_of([&] { runtime::parse_json(deep, "deep.json"); }).find("nested deeper than 64 levels"),
            std::string::npos);
  const std::string deepest = std::string(runtime::kMaxJsonDepth, '[') + std::string(runtime::kMaxJsonDepth, ']');
  EXPECT_EQ(runtime::parse_json(deepest, "ok.json").type, runtime::JsonValue::Type::array);
  EXPECT_EQ(runtime::parse_json(R"("A\u0041\u00e9\u20ac\ud83d\ude00")", "u.json").string,
            "AA\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80");
  EXPECT_NE(error_of([] { runtime::parse_json(R"("\udc00")", "u.json"); }).find("low surrogate"), std::string::npos);
  EXPECT_NE(error_of([] { runtime::parse_json(R"("\ud800x")", "u.json"); }).find("high surrogate"), std::string::npos);
  EXPECT_NE(error_of([] { runtime::parse_json(R"("\u12g4")", "u.json"); }).find("hex digit"), std::string::npos);
  EXPECT_NE(error_of([] { runtime::parse_json(R"("\u12)", "u.json"); }).find("unterminated"), std::string::npos);
  // A key written with escapes is the same key.
  TrainingConfig config;
  config.apply_json(R"({"se\u0065d": 7})", "t.json");
  EXPECT_EQ(config.engine.seed, 7u);
  const std::string dir = std::filesystem::temp_directory_path().string();
  EXPECT_NE(error_of([&] { load_training_config(dir, {}); }).find("is a directory"), std::string::npos);
}

TEST(Config, NumbersAreNeverTruncatedOrNonFinite) {
  EXPECT_NE(error_of([] { TrainingConfig().apply_override("gradient_accumulation_steps=4294967298"); })
                .find("gradient_accumulation_steps"),
            std::string::npos);
  EXPECT_NE(error_of([] { TrainingConfig().apply_override("zero_optimization.stage=4294967299"); }).find("range"),
            std::string::npos);
  EXPECT_NE(error_of([] { TrainingConfig().apply_json(R"({"seed": 1e30})", "t.json"); }).find("seed"), std::string::npos);
  for (const ConfigKeyDoc& doc : config_documentation()) {
    if (doc.type == "a number")
      for (const char* value : {"inf", "-inf", "nan", "1e400"})
        EXPECT_NE(error_of([&] { TrainingConfig().apply_override(doc.key + "=" + value); }).find(doc.key),
                  std::string::npos)
            << doc.key << "=" << value << " was accepted";
    if (doc.type != "an integer") continue;
    for (const char* value : {"4294967298", "-4294967298", "99999999999999999999"}) {
      TrainingConfig c;
      const std::string error = error_of([&] { c.apply_override(doc.key + "=" + value); });
      if (error == "(no error)") {
        bool exact = false;
        for (const auto& [key, text] : c.entries()) exact |= key == doc.key && text == value;
        EXPECT_TRUE(exact) << doc.key << "=" << value << " was accepted but not held exactly";
      } else {
        EXPECT_NE(error.find(doc.key), std::string::npos) << error;
      }
    }
  }
}

}  // namespace
}  // namespace zs
