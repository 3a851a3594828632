#include "text_corpus.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "zeroshard/error.hpp"

namespace zs::examples {

namespace {

// SplitMix64's finaliser: a well-mixed 64-bit hash of a 64-bit value.
std::uint64_t mix(std::uint64_t z) {
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

std::vector<std::uint8_t> read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InvalidArgument("cannot read " + path.string());
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

}  // namespace

TextCorpus load_text_corpus(const std::string& dir, double validation_fraction) {
  if (!(validation_fraction > 0 && validation_fraction < 1))
    throw InvalidArgument("the validation fraction must be in (0, 1), not " + std::to_string(validation_fraction));
  namespace fs = std::filesystem;
  std::error_code error;
  fs::directory_iterator entries(dir, error);
  if (error)
    throw InvalidArgument("cannot list " + dir + " (" + error.message() +
                          "): install Debian's fortunes package (apt-get install fortunes) or pass --data-dir");
  std::vector<fs::path> paths;
  for (const fs::directory_entry& entry : entries) {
    const std::string extension = entry.path().extension().string();
    if (entry.is_symlink() || !entry.is_regular_file() || extension == ".dat" || extension == ".u8") continue;
    paths.push_back(entry.path());
  }
  std::sort(paths.begin(), paths.end());
  TextCorpus corpus;
  for (const fs::path& path : paths) {
    const std::vector<std::uint8_t> bytes = read_file(path);
    // The first line start at or after (1 - fraction) of the file.
    auto split = static_cast<std::size_t>(std::ceil((1 - validation_fraction) * static_cast<double>(bytes.size())));
    while (split < bytes.size() && split > 0 && bytes[split - 1] != '\n') ++split;
    corpus.train.insert(corpus.train.end(), bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(split));
    corpus.validation.insert(corpus.validation.end(), bytes.begin() + static_cast<std::ptrdiff_t>(split), bytes.end());
    corpus.files.push_back(path.filename().string());
  }
  if (corpus.files.empty())
    throw InvalidArgument(dir + " holds no text file: install Debian's fortunes package or pass --data-dir");
  if (corpus.train.size() < 2 || corpus.validation.size() < 2)
    throw InvalidArgument("the corpus in " + dir + " is too small to split (" + std::to_string(corpus.train.size()) +
                          " training and " + std::to_string(corpus.validation.size()) + " validation bytes)");
  return corpus;
}

WindowSampler::WindowSampler(std::int64_t text_bytes, std::int64_t block_size, std::uint64_t seed)
    : range_(text_bytes - block_size), seed_(seed) {
  if (block_size < 1 || range_ < 1)
    throw InvalidArgument("the training text (" + std::to_string(text_bytes) + " bytes) is shorter than one window of " +
                          std::to_string(block_size + 1) + " bytes: lower --block-size");
}

std::int64_t WindowSampler::position(std::int64_t step, std::int64_t window) const {
  const std::uint64_t h = mix(mix(seed_ ^ 0x243F6A8885A308D3ull) ^ mix(static_cast<std::uint64_t>(step)) * 3 ^
                              static_cast<std::uint64_t>(window));
  return static_cast<std::int64_t>(h % static_cast<std::uint64_t>(range_));
}

std::vector<std::int64_t> WindowSampler::positions(std::int64_t step, int micro_step, int world, int rank,
                                                   std::int64_t micro_batch) const {
  std::vector<std::int64_t> out(static_cast<std::size_t>(micro_batch));
  const std::int64_t first = (static_cast<std::int64_t>(micro_step) * world + rank) * micro_batch;
  for (std::int64_t i = 0; i < micro_batch; ++i) out[static_cast<std::size_t>(i)] = position(step, first + i);
  return out;
}

std::vector<std::int64_t> tiling_positions(std::int64_t text_bytes, std::int64_t block_size) {
  std::vector<std::int64_t> out;
  for (std::int64_t p = 0; p + 1 < text_bytes; p += block_size) out.push_back(p);
  return out;
}

std::vector<std::int64_t> spread_positions(std::int64_t text_bytes, std::int64_t block_size, std::int64_t count) {
  const std::int64_t last = std::max<std::int64_t>(0, text_bytes - block_size - 1);
  std::vector<std::int64_t> out(static_cast<std::size_t>(count));
  for (std::int64_t j = 0; j < count; ++j)
    out[static_cast<std::size_t>(j)] = count == 1 ? 0 : static_cast<std::int64_t>(static_cast<double>(last) * j / (count - 1));
  return out;
}

void fill_windows(const std::vector<std::uint8_t>& text, const std::vector<std::int64_t>& positions,
                  std::int64_t block_size, std::int32_t ignore_index, Tensor& ids, std::vector<std::int32_t>& targets) {
  const auto rows = static_cast<std::int64_t>(positions.size());
  const auto size = static_cast<std::int64_t>(text.size());
  ids.resize({rows, block_size});
  targets.resize(static_cast<std::size_t>(rows * block_size));
  for (std::int64_t r = 0; r < rows; ++r) {
    const std::int64_t p = positions[static_cast<std::size_t>(r)];
    for (std::int64_t t = 0; t < block_size; ++t) {
      const std::int64_t at = r * block_size + t;
      const bool input_in = p >= 0 && p + t < size, target_in = p >= 0 && p + t + 1 < size;
      ids.data()[at] = input_in ? static_cast<float>(text[static_cast<std::size_t>(p + t)]) : 0.0f;
      targets[static_cast<std::size_t>(at)] = target_in ? text[static_cast<std::size_t>(p + t + 1)] : ignore_index;
    }
  }
}

double unigram_cross_entropy(const std::vector<std::uint8_t>& train, const std::vector<std::uint8_t>& validation) {
  std::array<double, 256> counts{};
  for (std::uint8_t b : train) counts[b] += 1;
  const double total = static_cast<double>(train.size()) + 256;  // add-one
  double nats = 0;
  for (std::uint8_t b : validation) nats -= std::log((counts[b] + 1) / total);
  return nats / static_cast<double>(validation.size());
}

double bigram_cross_entropy(const std::vector<std::uint8_t>& train, const std::vector<std::uint8_t>& validation,
                            double k) {
  std::vector<double> pairs(256 * 256, 0.0);
  std::array<double, 256> firsts{};
  for (std::size_t i = 1; i < train.size(); ++i) {
    pairs[train[i - 1] * 256u + train[i]] += 1;
    firsts[train[i - 1]] += 1;
  }
  double nats = 0;
  for (std::size_t i = 1; i < validation.size(); ++i) {
    const std::uint8_t a = validation[i - 1], b = validation[i];
    nats -= std::log((pairs[a * 256u + b] + k) / (firsts[a] + 256 * k));
  }
  return nats / static_cast<double>(validation.size() - 1);
}

}  // namespace zs::examples
