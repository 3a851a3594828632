#include "zeroshard/comm/communicator.hpp"

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "collective_contract.hpp"
#include "comm_context.hpp"
#include "composite_ops.hpp"
#include "mpi_ops.hpp"
#include "recursive_doubling_op.hpp"
#include "ring_op.hpp"
#include "shared_memory_op.hpp"
#include "zeroshard/comm/agreement.hpp"
#include "zeroshard/comm/mpi_check.hpp"

namespace zs {

using detail::ChunkBounds;
using detail::CommContext;
using detail::PendingOp;

namespace {

enum CallKind : int { kAllReduce = 1, kReduceScatter = 2, kAllGather = 3 };

const char* kind_name(int kind) {
  return kind == kAllReduce ? "all_reduce" : kind == kReduceScatter ? "reduce_scatter" : "all_gather";
}

// The shared-memory channel for an algorithm that asked for it by name; throws if there is none.
detail::SharedMemoryChannel& required_channel(CommContext& ctx, const char* collective) {
  if (detail::SharedMemoryChannel* channel = ctx.shared_memory_channel()) return *channel;
  throw InvalidArgument(std::string(collective) + " with algorithm shared_memory: " +
                        (ctx.spans_nodes ? std::string("this communicator's ranks span several nodes")
                                         : std::string("/dev/shm could not be mapped on every rank")) +
                        "; use automatic (it takes shared memory where it can) or ring");
}

// What `automatic` means for a reduce-scatter: shared memory on one node, else the ring. A
// 16-bit wire (per-hop rounding, RingOp) always takes the ring.
template <class T>
Algorithm resolve_reduce(CommContext& ctx, Algorithm algorithm, DType wire) {
  const bool narrow = std::is_same_v<T, float> && wire != DType::float32;
  if (algorithm == Algorithm::automatic)
    return !narrow && ctx.shared_memory_channel() ? Algorithm::shared_memory : Algorithm::ring;
  // One rank has nothing to exchange: the ring's local copy serves.
  if (algorithm == Algorithm::shared_memory && (narrow || ctx.size == 1)) return Algorithm::ring;
  return algorithm;
}

// `wire`: the caller's dtype. A 16-bit one, reduced over a widened float32 copy, travels in
// 16 bits on the ring (RingOp: rounded per hop, half the bytes); MPI's own reduce-scatter
// reduces the widened float32 values (float32 on the wire, rounded once).
template <class T>
std::unique_ptr<PendingOp> make_reduce_scatter(CommContext& ctx, Algorithm algorithm, T* full,
                                               std::int64_t count, T* own_chunk, bool average, DType wire) {
  algorithm = resolve_reduce<T>(ctx, algorithm, wire);
  if (algorithm == Algorithm::mpi)
    return std::make_unique<detail::MpiReduceScatterOp<T>>(ctx, full, count, own_chunk, average);
  if (algorithm == Algorithm::shared_memory) {
    detail::SharedMemoryChannel& channel = required_channel(ctx, "reduce_scatter");
    return std::make_unique<detail::SharedMemoryOp<T>>(channel, detail::ShardCollective::reduce_scatter, full,
                                                       count, own_chunk, average);
  }
  return std::make_unique<detail::RingOp<T>>(ctx, detail::ShardCollective::reduce_scatter, full, count,
                                             own_chunk, average, ctx.next_tag(),
                                             std::is_same_v<T, float> ? wire : dtype_of<T>());
}

// What `automatic` means for a gather of `count` elements (docs/collectives.md has the
// measurements behind it): shared memory on one node (where it is mapped, and not for the
// gather stage of an all_reduce: `mpi_allowed` false, see make_all_reduce); otherwise
// recursive doubling below the crossover (the ring where the world
// size is not a power of two); at and above it MPI's own all-gather on one node, unless
// `mpi_allowed` is false (the gather stage of all_reduce, see make_all_reduce) or a chunk
// exceeds MPI's int count, where the ring serves. Across nodes the ring: placed node by node it
// sends (n-1)/n of the buffer out of each node, Open MPI 4.1's all-gather at 4 ranks 1/1
// (docs/performance.md, "Across a link": 0.82x the stage-3 step over a 2 Gbit/s link).
template <class T>
Algorithm resolve_gather(CommContext& ctx, Algorithm algorithm, std::int64_t count, bool mpi_allowed) {
  if (algorithm == Algorithm::shared_memory && ctx.size == 1) return Algorithm::ring;  // nothing to exchange
  if (algorithm != Algorithm::automatic) return algorithm;
  // Not for a gather built later (mpi_allowed false): its turn must be taken at issue.
  if (mpi_allowed && ctx.shared_memory_channel()) return Algorithm::shared_memory;
  if (static_cast<std::size_t>(count) * sizeof(T) < ctx.config.all_gather_crossover_bytes)
    return Algorithm::recursive_doubling;
  const bool fits_mpi = ChunkBounds{count, ctx.size}.chunk_elems() <= std::numeric_limits<int>::max();
  return mpi_allowed && fits_mpi && !ctx.spans_nodes ? Algorithm::mpi : Algorithm::ring;
}

// Point-to-point all-gathers take a tag drawn by the caller (see make_all_reduce).
template <class T>
std::unique_ptr<PendingOp> make_point_to_point_gather(CommContext& ctx, Algorithm algorithm, T* full,
                                                      std::int64_t count, T* own_chunk, int tag) {
  algorithm = resolve_gather<T>(ctx, algorithm, count, /*mpi_allowed=*/false);
  if (algorithm == Algorithm::shared_memory) algorithm = Algorithm::ring;  // needs a ticket drawn at issue
  if (algorithm == Algorithm::recursive_doubling && detail::RecursiveDoublingGatherOp<T>::supports(ctx.size))
    return std::make_unique<detail::RecursiveDoublingGatherOp<T>>(ctx, full, count, own_chunk, tag);
  return std::make_unique<detail::RingOp<T>>(ctx, detail::ShardCollective::all_gather, full, count, own_chunk, false, tag);
}

template <class T>
std::unique_ptr<PendingOp> make_all_gather(CommContext& ctx, Algorithm algorithm, T* full,
                                           std::int64_t count, T* own_chunk) {
  algorithm = resolve_gather<T>(ctx, algorithm, count, /*mpi_allowed=*/true);
  if (algorithm == Algorithm::mpi)
    return std::make_unique<detail::MpiAllGatherOp<T>>(ctx, full, count, own_chunk);
  if (algorithm == Algorithm::shared_memory) {
    detail::SharedMemoryChannel& channel = required_channel(ctx, "all_gather");
    return std::make_unique<detail::SharedMemoryOp<T>>(channel, detail::ShardCollective::all_gather, full, count,
                                                       own_chunk, false);
  }
  return make_point_to_point_gather(ctx, algorithm, full, count, own_chunk, ctx.next_tag());
}

// all_reduce = reduce_scatter (configured algorithm) + all_gather, in place. The gather stage
// starts at a rank-dependent moment, which only point-to-point messages with a tag drawn now
// can tolerate (see SequenceOp): it is the configured point-to-point gather, the ring when
// MPI's is configured, or, when the reduce-scatter runs in shared memory, a shared-memory
// gather whose turn is taken now. Equal chunks (count divisible by n) are required by
// recursive doubling; otherwise the ring serves.
template <class T>
std::unique_ptr<PendingOp> make_all_reduce(CommContext& ctx, Algorithm algorithm, T* data,
                                           std::int64_t count, bool average, DType wire) {
  const ChunkBounds bounds{count, ctx.size};
  T* own_chunk = data + bounds.begin(ctx.rank);
  const bool shared = resolve_reduce<T>(ctx, algorithm, wire) == Algorithm::shared_memory;
  auto reduce = make_reduce_scatter<T>(ctx, algorithm, data, count, own_chunk, average, wire);
  std::string description = "all_reduce of " + std::to_string(count) + " " + to_string(dtype_of<T>()) +
                            " (reduce_scatter, then all_gather)";
  std::vector<detail::SequenceOp::StageFactory> later;
  if (shared) {
    // Both stages in shared memory: the gather's turn in the channel's issue order is taken
    // now, with the reduce-scatter's, so every rank runs them in the same order.
    detail::SharedMemoryChannel& channel = *ctx.shared_memory_channel();
    std::optional<std::uint64_t> turn;
    if (detail::SharedMemoryOp<T>::needs_turn(count)) turn = channel.take_ticket();
    later.push_back([&channel, data, count, own_chunk, turn] {
      return std::make_unique<detail::SharedMemoryOp<T>>(channel, detail::ShardCollective::all_gather, data, count,
                                                         own_chunk, false, turn);
    });
  } else {
    const int gather_tag = ctx.next_tag();
    const Algorithm gather = count % ctx.size == 0 ? ctx.config.all_gather : Algorithm::ring;
    later.push_back([&ctx, gather, data, count, own_chunk, gather_tag] {
      return make_point_to_point_gather(ctx, gather, data, count, own_chunk, gather_tag);
    });
  }
  return std::make_unique<detail::SequenceOp>(std::move(description), std::move(reduce), std::move(later));
}

// all_reduce of 16-bit data: the reduce-scatter over a widened float32 copy (16 bits on the
// ring's wire), this rank's chunk rounded into `data`, then an all-gather of the 16-bit words
// in place. The same bits as widening the whole buffer for an all-gather of float32 sums and
// rounding after (rounding commutes with copying), with half the bytes on the wire.
std::unique_ptr<PendingOp> make_half_all_reduce(CommContext& ctx, Algorithm algorithm, const HostBuffer& data,
                                                bool average) {
  const std::int64_t count = data.count;
  const ChunkBounds bounds{count, ctx.size};
  const std::int64_t own = bounds.begin(ctx.rank);
  auto* words = static_cast<std::uint16_t*>(data.data);
  auto reduce = std::make_unique<detail::WidenedOp>(
      ctx, data.dtype, data.data, count, words + own, own, bounds.size(ctx.rank), [&](float* widened) {
        return make_reduce_scatter<float>(ctx, algorithm, widened, count, widened + own, average, data.dtype);
      });
  const int gather_tag = ctx.next_tag();
  const Algorithm gather = count % ctx.size == 0 ? ctx.config.all_gather : Algorithm::ring;
  std::string description = "all_reduce of " + std::to_string(count) + " " + to_string(data.dtype) +
                            " (a reduce_scatter in float32, then a 16-bit all_gather)";
  std::vector<detail::SequenceOp::StageFactory> later;
  later.push_back([&ctx, gather, words, count, own, gather_tag] {
    return make_point_to_point_gather(ctx, gather, words, count, words + own, gather_tag);
  });
  return std::make_unique<detail::SequenceOp>(std::move(description), std::move(reduce), std::move(later));
}

// Builds a reduction for `input`'s dtype. `build(full, own)` creates the collective for one
// element type: float32 and float64 run in the caller's buffers; 16-bit floats run in float32
// over a widened copy (see WidenedOp), whose elements [own_offset, own_offset + own_count)
// are rounded into `output` at the end.
template <class Build>
std::unique_ptr<PendingOp> reduction(CommContext& ctx, const HostBuffer& input, void* output,
                                     std::int64_t own_offset, std::int64_t own_count, Build build) {
  switch (input.dtype) {
    case DType::float32:
      return build(static_cast<float*>(input.data), static_cast<float*>(output));
    case DType::float64:
      return build(static_cast<double*>(input.data), static_cast<double*>(output));
    case DType::bfloat16:
    case DType::float16:
      return std::make_unique<detail::WidenedOp>(
          ctx, input.dtype, input.data, input.count, output, own_offset, own_count,
          [&](float* widened) { return build(widened, widened + own_offset); });
  }
  throw InvalidArgument("unknown dtype value " + std::to_string(static_cast<int>(input.dtype)));
}

bool overlaps(const HostBuffer& a, const HostBuffer& b) {
  auto pa = reinterpret_cast<std::uintptr_t>(a.data), pb = reinterpret_cast<std::uintptr_t>(b.data);
  return pa < pb + b.count * size_of(b.dtype) && pb < pa + a.count * size_of(a.dtype);
}

// The reduce_scatter / all_gather contract between the full buffer and this rank's shard.
void check_full_and_shard(const char* collective, const HostBuffer& full, const HostBuffer& shard,
                          int rank, int size) {
  detail::check_shard_contract(collective, full.count, full.dtype, shard.count, shard.dtype, size);
  const auto* own = static_cast<const std::byte*>(full.data) + shard.count * rank * size_of(full.dtype);
  if (overlaps(full, shard) && shard.data != own)
    throw InvalidArgument(std::string(collective) + ": the shard overlaps the full buffer but is not "
                          "this rank's chunk of it (offset rank*S); pass disjoint buffers or exactly that chunk");
}

}  // namespace

Communicator::Communicator(MPI_Comm parent, CommunicatorConfig config)
    : context_(std::make_shared<CommContext>(parent, config)) {}

Communicator::Communicator(std::shared_ptr<CommContext> context) : context_(std::move(context)) {}

Communicator::~Communicator() = default;
Communicator::Communicator(Communicator&&) noexcept = default;
Communicator& Communicator::operator=(Communicator&&) noexcept = default;

CommContext& Communicator::context() const {
  if (!context_) throw InvalidArgument("this Communicator was moved from; use the one it was moved to");
  return *context_;
}

int Communicator::rank() const { return context().rank; }
int Communicator::size() const { return context().size; }
MPI_Comm Communicator::handle() const { return context().comm; }
const CommunicatorConfig& Communicator::config() const { return context().config; }

Communicator Communicator::split(int color, int key) const {
  if (color < 0)
    throw InvalidArgument("Communicator::split: color " + std::to_string(color) +
                          " is negative; every rank must pass a color >= 0");
  MPI_Comm part = MPI_COMM_NULL;
  ZS_MPI_CHECK(MPI_Comm_split(handle(), color, key, &part));
  // The new context duplicates `part` (errors returned there too); the split itself is freed.
  Communicator result(std::make_shared<CommContext>(part, config()));
  ZS_MPI_CHECK(MPI_Comm_free(&part));
  return result;
}

Communicator Communicator::split_shared_node() const {
  MPI_Comm node = MPI_COMM_NULL;
  ZS_MPI_CHECK(MPI_Comm_split_type(handle(), MPI_COMM_TYPE_SHARED, rank(), MPI_INFO_NULL, &node));
  Communicator result(std::make_shared<CommContext>(node, config()));
  ZS_MPI_CHECK(MPI_Comm_free(&node));
  return result;
}

Work Communicator::submit(const char* op, const HostBuffer& buffer, std::string_view label,
                          std::unique_ptr<PendingOp> pending) const {
  CommContext& ctx = context();
  const std::uint64_t sequence = ctx.issue(op, buffer.count, buffer.dtype, label);
  return Work(context_, ctx.engine.submit(std::move(pending), sequence));
}

void Communicator::barrier() {
  submit("barrier", {}, "barrier",
         std::make_unique<detail::MpiSmallOp>(context(), nullptr, 0, MPI_DATATYPE_NULL, MPI_OP_NULL, "", nullptr))
      .wait();
}

namespace {
MPI_Op mpi_op(ScalarOp op) { return op == ScalarOp::min ? MPI_MIN : op == ScalarOp::max ? MPI_MAX : MPI_SUM; }
const char* scalar_op_name(ScalarOp op) { return op == ScalarOp::min ? "min" : op == ScalarOp::max ? "max" : "sum"; }
}  // namespace

void Communicator::all_reduce_scalars(void* data, std::size_t count, MPI_Datatype type, const char* type_name,
                                      ScalarOp op, std::string_view label) const {
  const int mpi_count = detail::checked_mpi_count(static_cast<std::int64_t>(count), "all_reduce_scalars");
  auto pending =
      std::make_unique<detail::MpiSmallOp>(context(), data, mpi_count, type, mpi_op(op), scalar_op_name(op), type_name);
  // Recorded as 8-byte words (the flight recorder's dtypes are the float types).
  submit("all_reduce_scalars", {data, static_cast<std::int64_t>(count), DType::float64}, label, std::move(pending)).wait();
}

void Communicator::all_reduce_scalars(std::span<std::int64_t> values, ScalarOp op, std::string_view label) const {
  all_reduce_scalars(values.data(), values.size(), MPI_INT64_T, "int64", op, label);
}

void Communicator::all_reduce_scalars(std::span<double> values, ScalarOp op, std::string_view label) const {
  all_reduce_scalars(values.data(), values.size(), MPI_DOUBLE, "float64", op, label);
}

void Communicator::set_activity(std::string_view what) const noexcept {
  if (context_ && context_->peers) context_->peers->activity(what);
}

const FlightRecorder& Communicator::flight_recorder() const { return context().recorder; }
std::int64_t Communicator::bytes_sent() const { return context().bytes_sent; }

void Communicator::progress() { context().engine.progress_all(); }

void Communicator::broadcast(HostBuffer buffer, int root) {
  if (root < 0 || root >= size())
    throw InvalidArgument("broadcast: root " + std::to_string(root) + " is not a rank of this " +
                          std::to_string(size()) + "-rank communicator");
  // MPI counts are int: move bytes in pieces of at most 1 GiB.
  constexpr std::int64_t kPiece = std::int64_t{1} << 30;
  auto* bytes = static_cast<std::byte*>(buffer.data);
  const std::int64_t total = buffer.count * static_cast<std::int64_t>(size_of(buffer.dtype));
  for (std::int64_t at = 0; at < total; at += kPiece)
    ZS_MPI_CHECK(MPI_Bcast(bytes + at, static_cast<int>(std::min(kPiece, total - at)), MPI_BYTE, root, handle()));
}

void Communicator::verify_same_call(int kind, const HostBuffer& buffer, CollectiveOptions options) const {
  if (!config().verify_across_ranks) return;
  // One all-reduce yields the lowest and highest value of each field across ranks.
  const std::int64_t fields[4] = {kind, buffer.count, static_cast<std::int64_t>(buffer.dtype),
                                  static_cast<std::int64_t>(options.op)};
  const std::vector<RangeAcrossRanks> ranges = range_across_ranks(fields, *this);
  const char* names[4] = {"collective", "element count", "dtype", "reduce op"};
  for (int i = 0; i < 4; ++i) {
    if (ranges[i].agreed()) continue;
    throw InvalidArgument(rank_and_host() + ": ranks disagree on the " + names[i] + " of collective #" +
                          std::to_string(context().recorder.next_sequence()) + ", a " + kind_name(kind) + " (this rank passed " + std::to_string(fields[i]) +
                          ", values across ranks range " + std::to_string(ranges[i].low) + ".." +
                          std::to_string(ranges[i].high) + "); every rank must issue the same collectives "
                          "in the same order with the same sizes");
  }
}

Work Communicator::all_reduce(HostBuffer data, CollectiveOptions options) {
  CommContext& ctx = context();
  verify_same_call(kAllReduce, data, options);
  if (data.count < 0) throw InvalidArgument("all_reduce: negative element count");
  const Algorithm algorithm = options.algorithm.value_or(ctx.config.reduce_scatter);
  detail::require_reduce_scatter_algorithm(algorithm, "all_reduce options.algorithm");
  const bool average = options.op == ReduceOp::average;
  auto op = is_half(data.dtype) ? make_half_all_reduce(ctx, algorithm, data, average)
                                : reduction(ctx, data, data.data, 0, data.count, [&](auto* values, auto*) {
                                    return make_all_reduce(ctx, algorithm, values, data.count, average, data.dtype);
                                  });
  return submit("all_reduce", data, options.label, std::move(op));
}

Work Communicator::reduce_scatter(HostBuffer full, HostBuffer shard, CollectiveOptions options) {
  CommContext& ctx = context();
  verify_same_call(kReduceScatter, full, options);
  check_full_and_shard("reduce_scatter", full, shard, ctx.rank, ctx.size);
  const Algorithm algorithm = options.algorithm.value_or(ctx.config.reduce_scatter);
  detail::require_reduce_scatter_algorithm(algorithm, "reduce_scatter options.algorithm");
  const bool average = options.op == ReduceOp::average;
  const std::int64_t own_offset = shard.count * ctx.rank;
  auto op = reduction(ctx, full, shard.data, own_offset, shard.count, [&](auto* values, auto* own) {
    return make_reduce_scatter(ctx, algorithm, values, full.count, own, average, full.dtype);
  });
  return submit("reduce_scatter", full, options.label, std::move(op));
}

Work Communicator::all_gather(HostBuffer shard, HostBuffer full, CollectiveOptions options) {
  CommContext& ctx = context();
  verify_same_call(kAllGather, full, options);
  check_full_and_shard("all_gather", full, shard, ctx.rank, ctx.size);
  const Algorithm algorithm = options.algorithm.value_or(ctx.config.all_gather);
  std::unique_ptr<PendingOp> op;
  switch (full.dtype) {
    case DType::float32:
      op = make_all_gather(ctx, algorithm, static_cast<float*>(full.data), full.count,
                           static_cast<float*>(shard.data));
      break;
    case DType::float64:
      op = make_all_gather(ctx, algorithm, static_cast<double*>(full.data), full.count,
                           static_cast<double*>(shard.data));
      break;
    case DType::bfloat16:
    case DType::float16:  // a gather only copies: 16-bit words travel as they are
      op = make_all_gather(ctx, algorithm, static_cast<std::uint16_t*>(full.data), full.count,
                           static_cast<std::uint16_t*>(shard.data));
      break;
  }
  return submit("all_gather", full, options.label, std::move(op));
}

}  // namespace zs
