// Optimizers and LR schedules against PyTorch itself: fixtures made by torch 1.13's
// torch.optim.SGD / Adam / AdamW and torch.optim.lr_scheduler, committed with the script that
// made them. Regenerate by hand (Debian's python3-torch; never in setup or CI):
//
//     /usr/bin/python3 tests/fixtures/generate_torch_golden.py
//
// Tolerances, and why:
// - Optimizers, kernels=default (ATen's reference CPU kernels, ATEN_CPU_CAPABILITY=default):
//   bitwise. zs::Optimizer does torch's single-tensor arithmetic op for op (same double scalars
//   cast to float32 once, same order, each op rounded to float32), so there is nothing to round
//   differently.
// - Optimizers, kernels=avx2 (what torch runs on x86 with AVX2): torch's add(..., alpha=) and
//   addcmul_ are fused multiply-adds there, r = fl(a + b*c) where we compute fl(a + fl(b*c)).
//   With u = 2^-24 (float32's unit roundoff), the two differ by at most u|b*c| + 2u|r|, and
//   every term is bounded by twice the largest magnitude M = max_t |x(t)| the quantity reaches
//   (e.g. |lr * d_p| = |p_t - p_(t-1)| <= 2M), so by 4uM per fused op. A step has at most 4
//   fused ops on a path (weight decay, momentum or moment, Nesterov, param update) and the
//   differences are carried on step to step, so over T steps |ours - torch| <= 16 T u M
//   (128 u M for the fixture's 8 steps; the test prints the measured worst, about 3 u M).
// - Schedules, torch's closed forms: within 4 double ulps of the base rate, absolute (bitwise
//   here: our formulas are torch's in torch's order; another C library's cos/pow may differ by
//   an ulp, which near a cosine's minimum is an ulp of base, not of the value).
// - Schedules, torch's scheduler objects (step(), the recursive "chainable" forms): each step
//   multiplies the previous rate by a freshly rounded ratio, so their drift from the closed
//   form grows with the step count: |ours - torch| <= 4 * (t + 1) * 2^-52 * base.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <span>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "zeroshard/runtime/lr_schedule.hpp"
#include "zeroshard/runtime/optimizer.hpp"

namespace zs {
namespace {

const std::string kFixtures = ZS_SOURCE_DIR "/tests/fixtures/";
constexpr double kFloatU = 0x1p-24;     // float32's unit roundoff: a rounding's worst relative error
constexpr double kDoubleUlp = 0x1p-52;  // the gap above 1, double

std::vector<std::string> words(const std::string& line) {
  std::istringstream in(line);
  std::vector<std::string> out;
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

std::vector<float> floats(const std::vector<std::string>& w, std::size_t from) {
  std::vector<float> out;
  for (std::size_t i = from; i < w.size(); ++i) out.push_back(std::strtof(w[i].c_str(), nullptr));
  return out;
}

std::map<std::string, std::string> key_values(const std::vector<std::string>& w, std::size_t from) {
  std::map<std::string, std::string> out;
  for (std::size_t i = from; i < w.size(); ++i) {
    const auto eq = w[i].find('=');
    if (eq != std::string::npos) out[w[i].substr(0, eq)] = w[i].substr(eq + 1);
  }
  return out;
}

double number(const std::map<std::string, std::string>& kv, const std::string& key) {
  const auto it = kv.find(key);
  if (it == kv.end()) throw std::runtime_error("fixture: no " + key);
  return std::strtod(it->second.c_str(), nullptr);
}

// Distance in representable float32 values (0 = same bits, but +0 == -0).
std::int64_t ulps(float a, float b) {
  auto ordered = [](float x) {
    const auto bits = static_cast<std::int64_t>(std::bit_cast<std::int32_t>(x));
    return bits < 0 ? -(bits & 0x7fffffff) : bits;
  };
  return std::llabs(ordered(a) - ordered(b));
}

// ---- optimizers ----
struct OptimizerCase {
  std::string name, kernels;
  OptimizerConfig config;
  std::map<int, std::vector<float>> params;  // after step t
  std::map<std::string, std::vector<float>> state;
};

struct OptimizerFixture {
  std::vector<ParameterRun> runs;
  std::int64_t elements = 0;
  std::vector<float> initial;
  std::vector<std::vector<float>> grads;  // [step - 1]
  std::vector<OptimizerCase> cases;
};

OptimizerFixture read_optimizer_fixture() {
  std::ifstream file(kFixtures + "torch_optim_golden.txt");
  if (!file) throw std::runtime_error("cannot open " + kFixtures + "torch_optim_golden.txt");
  OptimizerFixture f;
  OptimizerCase* current = nullptr;
  for (std::string line; std::getline(file, line);) {
    const auto w = words(line);
    if (w.empty() || w[0][0] == '#') continue;
    if (w[0] == "layout") {
      const std::int64_t count = std::stoll(w[3]);
      f.runs.push_back({f.elements, count, w[2] == "1"});
      f.elements += count;
    } else if (w[0] == "initial") {
      f.initial = floats(w, 1);
    } else if (w[0] == "grad") {
      f.grads.push_back(floats(w, 2));
    } else if (w[0] == "case") {
      const auto kv = key_values(w, 3);
      OptimizerConfig c;
      c.kind = parse_optimizer_kind(kv.at("kind"));
      c.lr = number(kv, "lr");
      c.beta1 = number(kv, "beta1");
      c.beta2 = number(kv, "beta2");
      c.eps = number(kv, "eps");
      c.weight_decay = number(kv, "weight_decay");  // explicit (>= 0): the decay group's
      c.momentum = number(kv, "momentum");
      c.dampening = number(kv, "dampening");
      c.nesterov = number(kv, "nesterov") != 0;
      f.cases.push_back({w[1], w[2], c, {}, {}});
      current = &f.cases.back();
    } else if (w[0] == "params") {
      current->params[std::stoi(w[1])] = floats(w, 2);
    } else if (w[0] == "state") {
      current->state[w[1]] = floats(w, 2);
    } else if (w[0] == "end") {
      current = nullptr;
    }
  }
  return f;
}

TEST(TorchGolden, OptimizerFixtureIsComplete) {
  const auto f = read_optimizer_fixture();
  EXPECT_EQ(f.initial.size(), static_cast<std::size_t>(f.elements));
  EXPECT_GE(f.grads.size(), 5u);
  EXPECT_GE(f.cases.size(), 22u);  // 11 configurations x 2 kernel builds
  bool decay = false, no_decay = false;
  for (const auto& r : f.runs) (r.weight_decay ? decay : no_decay) = true;
  EXPECT_TRUE(decay && no_decay) << "both parameter groups";
  for (const auto& c : f.cases) {
    EXPECT_EQ(c.params.count(static_cast<int>(f.grads.size())), 1u) << c.name;
    EXPECT_EQ(c.state.size(), static_cast<std::size_t>(Optimizer(c.config).state_per_element())) << c.name;
  }
}

// Runs zs::Optimizer over the fixture's steps on a flat slice (the layout's runs, then padding)
// and compares with torch after every stored step and the final state.
void check_case(const OptimizerFixture& f, const OptimizerCase& c, double& worst_avx2_ratio) {
  SCOPED_TRACE(c.name + " " + c.kernels);
  const Optimizer optimizer(c.config);
  const std::int64_t padding = 3, n = f.elements + padding;
  std::vector<float> params(f.initial), grads(n, 0.5f);
  params.resize(n, 7.0f);
  std::vector<float> state(n * optimizer.state_per_element(), 0.0f);
  const auto names = optimizer.state_names();
  const int steps = static_cast<int>(f.grads.size());
  // max_t |x(t)| per element: parameters, then each state array
  std::vector<std::vector<double>> scale(1 + names.size(), std::vector<double>(n, 0.0));
  for (std::int64_t i = 0; i < n; ++i) scale[0][i] = std::abs(params[i]);
  const bool bitwise = c.kernels == "default";
  const double bound_u = 16.0 * steps;  // in units of u * max_t |x(t)|: see the file's header
  auto compare = [&](const std::string& what, std::span<const float> ours, const std::vector<float>& torch,
                     const std::vector<double>& max_magnitude) {
    ASSERT_EQ(torch.size(), static_cast<std::size_t>(f.elements)) << what;
    for (std::int64_t i = 0; i < f.elements; ++i) {
      if (bitwise) {
        ASSERT_EQ(std::bit_cast<std::uint32_t>(ours[i]), std::bit_cast<std::uint32_t>(torch[i]))
            << what << " element " << i << ": ours " << ours[i] << ", torch " << torch[i] << " ("
            << ulps(ours[i], torch[i]) << " ulps)";
      } else {
        const double allowed = bound_u * kFloatU * max_magnitude[i];
        const double diff = std::abs(static_cast<double>(ours[i]) - torch[i]);
        if (max_magnitude[i] > 0) worst_avx2_ratio = std::max(worst_avx2_ratio, diff / (kFloatU * max_magnitude[i]));
        ASSERT_LE(diff, allowed) << what << " element " << i << ": ours " << ours[i] << ", torch " << torch[i];
      }
    }
  };
  for (int t = 1; t <= steps; ++t) {
    std::copy(f.grads[t - 1].begin(), f.grads[t - 1].end(), grads.begin());
    optimizer.update(params, grads, state, f.runs, c.config.lr, t);
    for (std::int64_t i = 0; i < n; ++i) {
      scale[0][i] = std::max(scale[0][i], static_cast<double>(std::abs(params[i])));
      for (std::size_t s = 0; s < names.size(); ++s)
        scale[1 + s][i] = std::max(scale[1 + s][i], static_cast<double>(std::abs(state[s * n + i])));
    }
    if (const auto it = c.params.find(t); it != c.params.end())
      compare("params after step " + std::to_string(t), params, it->second, scale[0]);
  }
  for (std::size_t s = 0; s < names.size(); ++s) {
    ASSERT_EQ(c.state.count(names[s]), 1u) << names[s];
    compare("state " + names[s], std::span<const float>(state).subspan(s * n, n), c.state.at(names[s]), scale[1 + s]);
  }
  for (std::int64_t i = f.elements; i < n; ++i) EXPECT_EQ(params[i], 7.0f) << "padding is not optimised";
}

TEST(TorchGolden, OptimizersMatchTorchBitwiseOnItsReferenceKernels) {
  const auto f = read_optimizer_fixture();
  double unused = 0;
  int checked = 0;
  for (const auto& c : f.cases)
    if (c.kernels == "default") {
      check_case(f, c, unused);
      ++checked;
    }
  EXPECT_GE(checked, 11);
}

TEST(TorchGolden, OptimizersMatchTorchsAvx2KernelsToFmaRounding) {
  const auto f = read_optimizer_fixture();
  double worst = 0;
  int checked = 0;
  for (const auto& c : f.cases)
    if (c.kernels == "avx2") {
      check_case(f, c, worst);
      ++checked;
    }
  EXPECT_GE(checked, 11);
  std::printf("worst |ours - torch avx2| = %.2f u max_t |x(t)|, u = 2^-24 (bound %d)\n", worst,
              16 * static_cast<int>(f.grads.size()));
}

// ---- schedules ----
struct ScheduleCase {
  std::string name, torch;
  ScheduleConfig config;
  double base = 0;
  std::vector<double> stepped, closed;
};

std::vector<ScheduleCase> read_schedule_fixture() {
  std::ifstream file(kFixtures + "torch_lr_schedule_golden.txt");
  if (!file) throw std::runtime_error("cannot open " + kFixtures + "torch_lr_schedule_golden.txt");
  std::vector<ScheduleCase> out;
  for (std::string line; std::getline(file, line);) {
    const auto w = words(line);
    if (w.empty() || w[0][0] == '#') continue;
    if (w[0] == "schedule") {
      const auto kv = key_values(w, 2);
      ScheduleCase c;
      c.name = w[1];
      c.torch = kv.at("torch");
      c.base = number(kv, "base");
      ScheduleConfig& s = c.config;
      s.kind = parse_schedule_kind(kv.at("kind"));
      s.warmup_steps = static_cast<std::int64_t>(number(kv, "warmup_steps"));
      s.warmup_start_factor = number(kv, "warmup_start_factor");
      if (kv.count("step_size")) s.step_size = static_cast<std::int64_t>(number(kv, "step_size"));
      if (kv.count("gamma")) s.gamma = number(kv, "gamma");
      if (kv.count("total_steps")) s.total_steps = static_cast<std::int64_t>(number(kv, "total_steps"));
      if (kv.count("min_lr")) s.min_lr = number(kv, "min_lr");
      if (kv.count("restart_period")) s.restart_period = static_cast<std::int64_t>(number(kv, "restart_period"));
      if (kv.count("restart_mult")) s.restart_mult = static_cast<std::int64_t>(number(kv, "restart_mult"));
      if (kv.count("max_lr")) s.max_lr = number(kv, "max_lr");
      s.validate();
      out.push_back(c);
    } else if (w[0] == "stepped") {
      for (std::size_t i = 1; i < w.size(); ++i) out.back().stepped.push_back(std::strtod(w[i].c_str(), nullptr));
    } else if (w[0] == "closed") {
      for (std::size_t i = 1; i < w.size(); ++i)
        out.back().closed.push_back(w[i] == "=" ? out.back().stepped.at(i - 1) : std::strtod(w[i].c_str(), nullptr));
    }
  }
  return out;
}

TEST(TorchGolden, EveryScheduleKindWithAndWithoutWarmupIsCovered) {
  const auto cases = read_schedule_fixture();
  std::map<ScheduleKind, int> plain, warm;
  for (const auto& c : cases) {
    ++(c.config.warmup_steps > 0 ? warm : plain)[c.config.kind];
    EXPECT_EQ(c.stepped.size(), c.closed.size()) << c.name;
    EXPECT_GE(c.stepped.size(), 100u) << c.name;
  }
  for (ScheduleKind k : {ScheduleKind::constant, ScheduleKind::step, ScheduleKind::exponential, ScheduleKind::cosine,
                         ScheduleKind::cosine_restarts, ScheduleKind::cyclic}) {
    EXPECT_GE(plain[k], 1) << to_string(k);
    EXPECT_GE(warm[k], 1) << to_string(k);
  }
}

TEST(TorchGolden, SchedulesMatchTorchsClosedFormsAndItsSchedulerObjects) {
  double worst_closed = 0, worst_stepped = 0;
  for (const auto& c : read_schedule_fixture()) {
    for (std::size_t t = 0; t < c.stepped.size(); ++t) {
      const double ours = learning_rate(c.config, c.base, static_cast<std::int64_t>(t));
      const double closed = std::abs(ours - c.closed[t]) / (kDoubleUlp * c.base);
      const double stepped = std::abs(ours - c.stepped[t]) / (kDoubleUlp * c.base);
      worst_closed = std::max(worst_closed, closed);
      worst_stepped = std::max(worst_stepped, stepped / static_cast<double>(t + 1));
      ASSERT_LE(closed, 4.0) << c.name << " (" << c.torch << ") t=" << t << ": ours " << ours << ", torch closed form "
                             << c.closed[t];
      ASSERT_LE(stepped, 4.0 * static_cast<double>(t + 1))
          << c.name << " (" << c.torch << ") t=" << t << ": ours " << ours << ", torch " << c.stepped[t];
    }
  }
  std::printf("worst: closed forms %.2f ulps of base; scheduler objects %.2f ulps of base per step\n", worst_closed,
              worst_stepped);
}

}  // namespace
}  // namespace zs
