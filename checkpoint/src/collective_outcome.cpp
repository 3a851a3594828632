#include "zeroshard/checkpoint/collective_outcome.hpp"

#include "zeroshard/checkpoint/checkpoint_error.hpp"
#include "zeroshard/comm/agreement.hpp"

namespace zs::checkpoint {

void raise_if_any_rank_failed(Communicator& comm, const std::string& local_error) {
  if (auto text = failure_on_any_rank(comm, local_error, "checkpoint outcome")) throw CheckpointError(*text);
}

void run_on_all_ranks(Communicator& comm, const std::function<void()>& body) {
  std::string error;
  try {
    body();
  } catch (const std::exception& e) {
    error = e.what();
    if (error.empty()) error = "unknown error";
  }
  raise_if_any_rank_failed(comm, error);
}

}  // namespace zs::checkpoint
