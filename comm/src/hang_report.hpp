#pragma once
// Internal: the message of a wait that passed its deadline (communication.timeout_s or an
// explicit Work::wait(timeout)): which ranks have not reached the collective, what each rank
// of this node was last doing (PeerBoard), and this rank's flight recorder. Horovod's stall
// inspector and NCCL's flight-recorder dump, in one TimeoutError.

#include <cstdint>
#include <string>

namespace zs::detail {

struct CommContext;

/// `sequence`: the collective waited on; `described`: its PendingOp::describe() line;
/// `limit`: "communication.timeout_s = 3 s" or "Work::wait(500 ms)".
std::string hang_report(const CommContext& ctx, std::uint64_t sequence, const std::string& described,
                        const std::string& limit);

}  // namespace zs::detail
