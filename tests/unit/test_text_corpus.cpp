// The GPT example's data (examples/text_corpus.hpp): which files the corpus reads, the
// per-file validation split, the windows of a step (the same global batch at any world size),
// padding, and the n-gram baselines against hand-computed values.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>

#include <unistd.h>

#include "../../examples/text_corpus.hpp"
#include "zeroshard/error.hpp"

namespace zs {
namespace {

namespace fs = std::filesystem;

void write(const fs::path& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

TEST(TextCorpus, ReadsTextFilesInOrderAndHoldsOutTheTailOfEachFromALineStart) {
  const fs::path dir = fs::temp_directory_path() / ("zs_text_corpus_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir / "sub");
  write(dir / "b", "0123456789\nabcdefghij\n");  // 22 bytes: 50% is byte 11, a line start
  write(dir / "a", "xxxxxxxxx\nyy\n");           // 13 bytes: 50% is byte 7 -> the next line, at 10
  write(dir / "a.dat", "index");
  write(dir / "sub" / "c", "not read: not directly in the folder");
  fs::create_symlink(dir / "a", dir / "a.u8");
  fs::create_symlink(dir / "b", dir / "link");
  const examples::TextCorpus corpus = examples::load_text_corpus(dir.string(), 0.5);
  EXPECT_EQ(corpus.files, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(std::string(corpus.train.begin(), corpus.train.end()), "xxxxxxxxx\n0123456789\n");
  EXPECT_EQ(std::string(corpus.validation.begin(), corpus.validation.end()), "yy\nabcdefghij\n");
  EXPECT_THROW((void)examples::load_text_corpus(dir.string(), 1.0), InvalidArgument);
  fs::remove_all(dir);
  try {
    (void)examples::load_text_corpus("/nonexistent", 0.05);
    FAIL() << "no error for a missing folder";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("fortunes"), std::string::npos) << e.what();
  }
}

TEST(TextCorpus, AStepsGlobalBatchIsTheSameAtEveryWorldSize) {
  const examples::WindowSampler sampler(10000, 16, 7);
  const std::int64_t global = 24;  // windows per step
  for (std::int64_t step : {0, 1, 57}) {
    std::vector<std::int64_t> reference;
    for (std::int64_t g = 0; g < global; ++g) reference.push_back(sampler.position(step, g));
    for (int world : {1, 2, 3, 4}) {
      for (std::int64_t micro : {global / world, global / world / 2}) {
        if (micro == 0 || global % (micro * world) != 0) continue;
        const int accumulation = static_cast<int>(global / (micro * world));
        std::vector<std::int64_t> got;
        for (int a = 0; a < accumulation; ++a)
          for (int r = 0; r < world; ++r) {
            const auto part = sampler.positions(step, a, world, r, micro);
            got.insert(got.end(), part.begin(), part.end());
          }
        EXPECT_EQ(got, reference) << "step " << step << ", world " << world << ", micro-batch " << micro;
      }
    }
    for (std::int64_t p : reference) {
      EXPECT_GE(p, 0);
      EXPECT_LE(p + 16, 9999);  // the window's last target is inside the text
    }
  }
  // Steps and seeds draw different windows.
  EXPECT_NE(sampler.position(0, 0), sampler.position(1, 0));
  EXPECT_NE(sampler.position(0, 0), examples::WindowSampler(10000, 16, 8).position(0, 0));
  EXPECT_THROW(examples::WindowSampler(16, 16, 7), InvalidArgument);
}

TEST(TextCorpus, WindowsShiftTargetsByOneAndPadPastTheEnd) {
  const std::vector<std::uint8_t> text{'a', 'b', 'c', 'd', 'e'};
  Tensor ids;
  std::vector<std::int32_t> targets;
  examples::fill_windows(text, {0, 3, -1}, 3, -100, ids, targets);
  ASSERT_EQ(ids.shape(), (Shape{3, 3}));
  const std::vector<float> want_ids{'a', 'b', 'c', 'd', 'e', 0, 0, 0, 0};
  EXPECT_EQ(std::vector<float>(ids.data(), ids.data() + 9), want_ids);
  EXPECT_EQ(targets, (std::vector<std::int32_t>{'b', 'c', 'd', 'e', -100, -100, -100, -100, -100}));
  // Tiling: every byte after the first is a target once.
  EXPECT_EQ(examples::tiling_positions(5, 3), (std::vector<std::int64_t>{0, 3}));
  EXPECT_EQ(examples::tiling_positions(7, 3), (std::vector<std::int64_t>{0, 3}));
  EXPECT_EQ(examples::tiling_positions(8, 3), (std::vector<std::int64_t>{0, 3, 6}));
  EXPECT_EQ(examples::spread_positions(20, 3, 3), (std::vector<std::int64_t>{0, 8, 16}));
}

TEST(TextCorpus, BaselinesMatchHandComputedCrossEntropies) {
  const std::vector<std::uint8_t> train{'a', 'b', 'a', 'b'}, validation{'a', 'b', 'c'};
  // Unigram, add-one over 256 bytes: p(a) = p(b) = 3/260, p(c) = 1/260.
  const double unigram = -(2 * std::log(3.0 / 260) + std::log(1.0 / 260)) / 3;
  EXPECT_NEAR(examples::unigram_cross_entropy(train, validation), unigram, 1e-12);
  // Bigram, add-k: p(b|a) = (2 + k) / (2 + 256k), p(c|b) = k / (1 + 256k).
  const double k = 0.5;
  const double bigram = -(std::log((2 + k) / (2 + 256 * k)) + std::log(k / (1 + 256 * k))) / 2;
  EXPECT_NEAR(examples::bigram_cross_entropy(train, validation, k), bigram, 1e-12);
}

}  // namespace
}  // namespace zs
