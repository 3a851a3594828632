#include "file_size_signal.hpp"

#include <pthread.h>

#include <cerrno>
#include <ctime>

namespace zs::checkpoint::detail {

SigxfszAsError::SigxfszAsError() noexcept {
  struct sigaction current {};
  if (sigaction(SIGXFSZ, nullptr, &current) != 0) return;
  const bool default_action = !(current.sa_flags & SA_SIGINFO) && current.sa_handler == SIG_DFL;
  if (!default_action) return;  // the program ignores or handles it: its choice
  sigset_t only;
  sigemptyset(&only);
  sigaddset(&only, SIGXFSZ);
  if (pthread_sigmask(SIG_BLOCK, &only, &previous_mask_) != 0) return;
  // Already blocked by the program: it will see the signal when it unblocks it, as it would
  // without ZeroShard; nothing to undo.
  active_ = sigismember(&previous_mask_, SIGXFSZ) == 0;
}

SigxfszAsError::~SigxfszAsError() {
  if (!active_) return;
  sigset_t only;
  sigemptyset(&only);
  sigaddset(&only, SIGXFSZ);
  // Discard what the failed writes raised (pending on this thread while it is blocked here;
  // delivered at the unblock below it would kill the process after all).
  const int saved_errno = errno;
  const struct timespec now = {0, 0};
  for (;;) {
    const int taken = sigtimedwait(&only, nullptr, &now);
    if (taken == SIGXFSZ || (taken < 0 && errno == EINTR)) continue;
    break;  // none pending (EAGAIN)
  }
  pthread_sigmask(SIG_SETMASK, &previous_mask_, nullptr);
  errno = saved_errno;
}

}  // namespace zs::checkpoint::detail
