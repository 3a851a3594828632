#pragma once
// What both examples check at start-up, before any training collective: that every rank was
// given the same options and sees the same data and checkpoint directory (a rank with other
// --epochs, --log-every or --save-every issues other collectives, and the job hangs), and that
// the checkpoint directory is writable (found now, not at the first save after the work).
// Every check is collective over `comm` and refuses on every rank, never on one.

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "zeroshard/comm/communicator.hpp"
#include "zeroshard/error.hpp"

namespace zs::examples {

/// An error every rank raised together (the start-up agreed on it). The examples print it on
/// every rank and exit with status 2 through MPI_Finalize: an MPI_Abort by the first rank
/// could kill the others before they print.
class RefusedOnEveryRank : public InvalidArgument {
 public:
  using InvalidArgument::InvalidArgument;
};

/// The examples' last word on an error, on stderr: "PROGRAM (rank R/N on HOST): MESSAGE" (a
/// message that already begins with this rank's "rank R/N on HOST: " keeps one). For
/// RefusedOnEveryRank it returns 2 (every rank refuses together and exits through
/// MPI_Finalize); otherwise it aborts the job (MPI_Abort, status 2) after half a second, so that
/// other ranks that met the same error (a bad setting every rank validates) print it first, and
/// a rank alone with its error still ends the ranks waiting on it in a collective.
int exit_on_error(const char* program, const std::exception& error);

/// Collective over `comm`: runs `body` on this rank; if it threw on any rank, every rank
/// throws RefusedOnEveryRank with the lowest failing rank's message (checkpoint::run_on_all_ranks).
void on_every_rank(Communicator& comm, const std::function<void()>& body);

/// A value every rank must hold alike: what it is (the option as the user writes it), and the
/// value: an integer, or the fingerprint() of a text (`text`: messages then say only "differs").
struct AgreedValue {
  std::string name;
  std::int64_t value = 0;
  bool text = false;
};

/// A 64-bit FNV-1a hash of `text`: the same on every rank (unlike std::hash, fixed by no
/// standard), to compare texts (paths, file contents) across ranks in one all-reduce.
std::int64_t fingerprint(const std::string& text);

/// Collective over `comm` (one all-reduce of 2 x values.size() int64: range_across_ranks).
/// Throws RefusedOnEveryRank on every rank naming each value that differs across ranks, with its
/// lowest and highest value (texts: "differs"), and the fix: give every rank the same options.
void require_same_on_every_rank(const std::vector<AgreedValue>& values, const Communicator& comm);

/// The start-up check of an example's options, collective over `comm`: `options` (the
/// example's own) plus --save-dir, --resume and (resuming) what DIR/latest says must be the same
/// on every rank (require_same_on_every_rank), then a given `save_dir` must be writable
/// (require_writable_save_dir). Throws RefusedOnEveryRank on every rank.
void agree_on_options(std::vector<AgreedValue> options, const std::string& save_dir, bool resume, Communicator& comm);

/// What DIR/latest says on this rank, as a value to agree on: 0 where DIR is empty or DIR/latest
/// does not exist, else fingerprint() of its contents. Not collective.
std::int64_t latest_fingerprint(const std::string& save_dir);

/// Collective over `comm`: rank 0 creates `save_dir` (with parents), then every rank writes
/// and removes a probe file in it (in per-rank mode every rank writes its own shard there).
/// Throws RefusedOnEveryRank on every rank naming the directory and the system's
/// reason if any rank cannot.
void require_writable_save_dir(const std::string& save_dir, Communicator& comm);

}  // namespace zs::examples
