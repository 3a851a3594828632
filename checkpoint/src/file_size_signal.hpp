#pragma once
// A write past the file size limit (RLIMIT_FSIZE, `ulimit -f`) fails with EFBIG, and the
// kernel also sends SIGXFSZ to the writing thread, whose default action kills the whole
// process (with a core dump). A checkpoint save must fail with its documented error instead
// ("File too large ... the previous checkpoint is untouched"), on the training thread and on
// the async writer thread alike, in programs that never heard of SIGXFSZ.
//
// While a SigxfszAsError lives, SIGXFSZ is blocked in the calling thread only (the signal
// mask is per thread; the process-wide disposition is not touched, so other threads and
// concurrent saves are unaffected and nothing races on restoring it). The destructor
// discards the SIGXFSZ the writes left pending on this thread and restores the thread's mask.
// A program that handles or ignores SIGXFSZ itself, or blocks it already, is left alone.

#include <signal.h>

namespace zs::checkpoint::detail {

class SigxfszAsError {
 public:
  SigxfszAsError() noexcept;
  ~SigxfszAsError();
  SigxfszAsError(const SigxfszAsError&) = delete;
  SigxfszAsError& operator=(const SigxfszAsError&) = delete;

 private:
  bool active_ = false;  // this object blocked SIGXFSZ and must discard and unblock it
  sigset_t previous_mask_{};
};

}  // namespace zs::checkpoint::detail
