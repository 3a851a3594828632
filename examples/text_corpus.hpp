#pragma once
// The GPT example's data (examples/gpt.cpp): a byte-level text corpus, its training and
// validation splits, the windows a step trains on, and the n-gram baselines the model is
// measured against.
//
// Corpus: every regular file directly in a folder (Debian's `fortunes` package installs plain
// text under /usr/share/games/fortunes), in sorted name order, except the `.dat` indexes
// strfile writes and symlinks (the `.u8` names are links to the text files). Vocabulary: the
// 256 byte values.
//
// Split, per file: the file's bytes before its split point train, the rest validate. The split
// point is the start of the first line at or after (1 - validation_fraction) of the file's
// length (the file's end when there is no such line). So validation holds the last ~5% of
// every file, whole lines, and draws on every source as training does. The training split is
// the files' training parts concatenated in file order; the validation split likewise.

#include <cstdint>
#include <string>
#include <vector>

#include "zeroshard/nn/tensor.hpp"

namespace zs::examples {

struct TextCorpus {
  std::vector<std::uint8_t> train, validation;
  std::vector<std::string> files;  // the names read, in order
};

/// Reads the corpus in `dir` and splits it as above. Throws InvalidArgument naming the folder
/// when it cannot be listed, holds no text file, or a split has fewer than 2 bytes (install
/// Debian's `fortunes`, or pass another folder); and when validation_fraction is not in (0, 1).
TextCorpus load_text_corpus(const std::string& dir, double validation_fraction);

/// Where the training windows of each optimizer step start. A step trains on a global batch of
/// `global_batch` windows of block_size + 1 bytes (inputs and the next-byte targets). Window g
/// (0 <= g < global_batch) of step s starts at a position drawn from (seed, s, g) alone, so
/// every rank computes the same positions, any world size splits the same global batch, and a
/// run resumed at step s continues with step s's windows.
class WindowSampler {
 public:
  /// Throws InvalidArgument if `text_bytes` does not hold one window of block_size + 1 bytes.
  WindowSampler(std::int64_t text_bytes, std::int64_t block_size, std::uint64_t seed);
  /// Start of window `window` of step `step`, uniform in [0, text_bytes - block_size - 1].
  std::int64_t position(std::int64_t step, std::int64_t window) const;
  /// This rank's slice of step `step`'s global batch at accumulation micro-step `micro_step`:
  /// windows (micro_step * world + rank) * micro_batch ... + micro_batch - 1.
  std::vector<std::int64_t> positions(std::int64_t step, int micro_step, int world, int rank,
                                      std::int64_t micro_batch) const;

 private:
  std::int64_t range_;  // number of valid start positions
  std::uint64_t seed_;
};

/// Starts of the windows that tile `text_bytes` with stride block_size: each byte from the
/// second to the last is a target of exactly one window (the last window may be short; its
/// missing targets are ignored). The full validation pass uses them.
std::vector<std::int64_t> tiling_positions(std::int64_t text_bytes, std::int64_t block_size);
/// `count` window starts spread evenly over the text (the first at 0, the last at the end):
/// the quick validation pass between steps uses them, the same at every step.
std::vector<std::int64_t> spread_positions(std::int64_t text_bytes, std::int64_t block_size, std::int64_t count);

/// Fills `ids` [positions.size(), block_size] with text[p .. p + block_size - 1] as floats, and
/// `targets` with text[p + 1 .. p + block_size] (row-major, one per position). A byte past the
/// text's end gets id 0 and target `ignore_index`; a negative position is a padding window,
/// all ignored (ranks left with fewer windows than others still run the same calls).
void fill_windows(const std::vector<std::uint8_t>& text, const std::vector<std::int64_t>& positions,
                  std::int64_t block_size, std::int32_t ignore_index, Tensor& ids, std::vector<std::int32_t>& targets);

/// Baselines in nats per byte, fitted on `train`, measured on `validation`:
/// the unigram model's cross-entropy (byte frequencies, add-one smoothed) over every
/// validation byte, and a bigram model's (P(b | a) from pair counts, add-k smoothed) over
/// every validation byte after the first.
double unigram_cross_entropy(const std::vector<std::uint8_t>& train, const std::vector<std::uint8_t>& validation);
double bigram_cross_entropy(const std::vector<std::uint8_t>& train, const std::vector<std::uint8_t>& validation,
                            double k);

}  // namespace zs::examples
