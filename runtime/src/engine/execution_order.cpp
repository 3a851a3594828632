#include "execution_order.hpp"

#include <cstring>
#include <string>

#include "zeroshard/comm/agreement.hpp"
#include "zeroshard/comm/mpi_check.hpp"
#include "zeroshard/error.hpp"

namespace zs::detail {

namespace {

std::string describe_run(std::int64_t group) {
  return group == kForwardEnded ? std::string("none (the program returned)") : "unit " + std::to_string(group);
}

}  // namespace

ExecutionOrder::ExecutionOrder(std::vector<ParameterGroup*> declared) {
  expected_[0] = declared;
  expected_[1] = std::move(declared);
}

void ExecutionOrder::begin(bool training, bool program, const float* input) {
  in_forward_ = true;
  training_ = training;
  program_ = program;
  following_ = true;
  ran_.clear();
  last_output_ = input;
}

bool ExecutionOrder::record(ParameterGroup& group) {
  const std::size_t position = ran_.size();
  const std::vector<ParameterGroup*>& order = expected();
  if (following_ && (position >= order.size() || order[position] != &group)) {
    following_ = false;
    ++changes_;
  }
  ran_.push_back(&group);
  return following_;
}

void ExecutionOrder::finish() {
  in_forward_ = false;
  std::vector<ParameterGroup*>& order = expected_[training_ ? 1 : 0];
  if (ran_ != order) {
    if (following_) ++changes_;  // ended early: left the order without a wrong run
    order = ran_;
  }
}

void agree_on_run(const Communicator& comm, std::size_t position, std::int64_t group, bool chained) {
  const std::int64_t stated[2] = {group, chained ? 1 : 0};
  const auto ranges = range_across_ranks(stated, comm);
  if (!ranges[0].agreed())
    throw InvalidArgument(rank_and_host() + ": ranks ran different units at run " + std::to_string(position) +
                          " of this forward (this rank: " + describe_run(group) + "; across ranks: " +
                          describe_run(ranges[0].low) + " to " + describe_run(ranges[0].high) +
                          "): a ForwardProgram must run the same units in the same order on every rank. Decide "
                          "branches from values every rank shares (the step count, a seed common to all ranks), "
                          "never from rank-local data");
  if (ranges[1].low == 0)
    throw InvalidArgument(rank_and_host() + ": at run " + std::to_string(position) +
                          " of this forward, some rank's ForwardProgram (this rank: " +
                          (chained ? "not this one" : "this one") +
                          ") passed an input that is not the previous run's output (nor, for the first run, the "
                          "forward's input), or returned something other than the last run's output. Backward "
                          "replays the chain of runs in reverse, so the runs must form one chain: put residual "
                          "connections and other wiring inside a module");
}

const Tensor& RunInputs::save(std::size_t position, const Tensor& input, const std::mt19937_64& random, bool copy) {
  if (inputs_.size() <= position) {
    inputs_.resize(position + 1);
    shared_.resize(position + 1, false);
    random_.resize(position + 1);
  }
  Tensor& saved = inputs_[position];
  random_[position] = random;
  if (!copy) {
    if (!shared_[position]) bytes_ -= saved.numel() * 4;
    saved = input;
    shared_[position] = true;
    return saved;
  }
  if (shared_[position]) saved = Tensor();  // never write through into the caller's storage
  shared_[position] = false;
  bytes_ -= saved.numel() * 4;
  saved.resize(input.shape());
  bytes_ += saved.numel() * 4;
  if (input.numel() > 0) std::memcpy(saved.data(), input.data(), static_cast<std::size_t>(input.numel()) * sizeof(float));
  return saved;
}

void RunInputs::drop_shared() {
  for (std::size_t i = 0; i < inputs_.size(); ++i)
    if (shared_[i]) {
      inputs_[i] = Tensor();
      shared_[i] = false;
    }
}

}  // namespace zs::detail
