#pragma once
// Making a local failure everybody's: a rank that fails alone while the others go on to the
// next collective would hang the job. Every collective checkpoint step runs through this.

#include <functional>
#include <string>

#include "zeroshard/comm/communicator.hpp"

namespace zs::checkpoint {

/// Collective. Runs `body` on this rank; if it threw on any rank, every rank throws
/// CheckpointError carrying the message of the lowest failing rank (and how many failed).
void run_on_all_ranks(Communicator& comm, const std::function<void()>& body);

/// Collective. Every rank throws CheckpointError with the lowest failing rank's message if
/// `local_error` is not empty on some rank.
void raise_if_any_rank_failed(Communicator& comm, const std::string& local_error);

}  // namespace zs::checkpoint
