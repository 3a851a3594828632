#include "recursive_doubling_op.hpp"

#include <algorithm>
#include <cstring>

#include "mpi_type.hpp"
#include "zeroshard/comm/mpi_check.hpp"

namespace zs::detail {

template <class T>
RecursiveDoublingGatherOp<T>::RecursiveDoublingGatherOp(CommContext& ctx, T* full, std::int64_t count,
                                                        const T* own_chunk, int tag)
    : ctx_(ctx),
      full_(full),
      own_chunk_(own_chunk),
      bounds_{count, ctx.size},
      tag_(tag),
      piece_elems_(std::max<std::int64_t>(1, ctx.config.all_gather_segment_bytes / sizeof(T))) {
  if (!supports(ctx.size))
    throw InvalidArgument("recursive_doubling all_gather needs a power-of-two world size, not " +
                          std::to_string(ctx.size) + "; use ring");
  while ((1 << steps_) < ctx.size) ++steps_;
}

template <class T>
void RecursiveDoublingGatherOp<T>::post_step() {
  requests_.clear();
  const int group = 1 << step_;
  const int partner = ctx_.rank ^ group;
  const int mine = ctx_.rank / group * group, theirs = partner / group * group;
  const std::int64_t chunk = bounds_.chunk_elems();
  const std::int64_t length = group * chunk;
  // Step 0 sends this rank's chunk from where the caller holds it: the local copy into `full`
  // (in start) then overlaps the transfer. Later steps send what `full` has gathered.
  const T* send_from = step_ == 0 ? own_chunk_ : full_ + mine * chunk;
  for (std::int64_t at = 0; at < length; at += piece_elems_) {
    requests_.push_back(MPI_REQUEST_NULL);
    ZS_MPI_CHECK(MPI_Irecv(full_ + theirs * chunk + at, static_cast<int>(std::min(piece_elems_, length - at)),
                           mpi_type<T>(), partner, tag_, ctx_.comm, &requests_.back()));
  }
  for (std::int64_t at = 0; at < length; at += piece_elems_) {
    requests_.push_back(MPI_REQUEST_NULL);
    ZS_MPI_CHECK(MPI_Isend(send_from + at, static_cast<int>(std::min(piece_elems_, length - at)), mpi_type<T>(),
                           partner, tag_, ctx_.comm, &requests_.back()));
  }
}

template <class T>
bool RecursiveDoublingGatherOp<T>::progress() {
  if (!started_) {
    started_ = true;
    if (steps_ > 0) post_step();
    T* own_in_full = full_ + bounds_.begin(ctx_.rank);
    // copy_n, not memcpy: an empty buffer's pointers may be null (UBSan: memcpy(nullptr, ..., 0)).
    if (own_in_full != own_chunk_) std::copy_n(own_chunk_, bounds_.size(ctx_.rank), own_in_full);
  }
  while (step_ < steps_) {
    int done = 0;
    ZS_MPI_CHECK(MPI_Testall(static_cast<int>(requests_.size()), requests_.data(), &done, MPI_STATUSES_IGNORE));
    if (!done) return false;
    if (++step_ < steps_) post_step();
  }
  return true;
}

template <class T>
void RecursiveDoublingGatherOp<T>::outstanding_requests(std::vector<MPI_Request*>& out) {
  const std::size_t receives = requests_.size() / 2;  // receives were posted first
  const std::size_t before = out.size();  // `out` may hold other collectives' requests
  for (std::size_t i = 0; i < receives; ++i)
    if (requests_[i] != MPI_REQUEST_NULL) out.push_back(&requests_[i]);
  if (out.size() > before) return;
  for (std::size_t i = receives; i < requests_.size(); ++i)
    if (requests_[i] != MPI_REQUEST_NULL) out.push_back(&requests_[i]);
}

template <class T>
void RecursiveDoublingGatherOp<T>::abandon() noexcept {
  const std::size_t receives = requests_.size() / 2;  // receives were posted first
  for (std::size_t i = 0; i < requests_.size(); ++i) {
    if (requests_[i] == MPI_REQUEST_NULL) continue;
    if (i < receives) MPI_Cancel(&requests_[i]);
    MPI_Request_free(&requests_[i]);
  }
}

template <class T>
std::string RecursiveDoublingGatherOp<T>::describe() const {
  return "recursive-doubling all_gather of " + std::to_string(bounds_.count) + " elements (tag " +
         std::to_string(tag_) + ", step " + std::to_string(step_) + " of " + std::to_string(steps_) + ")";
}

template class RecursiveDoublingGatherOp<float>;
template class RecursiveDoublingGatherOp<double>;
template class RecursiveDoublingGatherOp<std::uint16_t>;

}  // namespace zs::detail
