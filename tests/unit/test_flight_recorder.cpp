// The flight recorder's ring (comm/flight_recorder.hpp): sequence numbers, wrap-around,
// states and the one-line descriptions hang reports print.
#include <gtest/gtest.h>

#include <string>

#include "zeroshard/comm/flight_recorder.hpp"
#include "zeroshard/error.hpp"

namespace zs {
namespace {

TEST(FlightRecorder, NumbersCollectivesAndKeepsTheLastN) {
  FlightRecorder recorder(3);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(recorder.issue("all_gather", 10 * (i + 1), DType::float32, "unit " + std::to_string(i)), static_cast<std::uint64_t>(i));
  EXPECT_EQ(recorder.next_sequence(), 5u);
  // #0 and #1 were overwritten; #2..#4 remain, oldest first.
  EXPECT_EQ(recorder.find(0), nullptr);
  EXPECT_EQ(recorder.find(1), nullptr);
  EXPECT_EQ(recorder.find(5), nullptr);  // not issued yet
  const auto records = recorder.records();
  ASSERT_EQ(records.size(), 3u);
  for (std::size_t k = 0; k < 3; ++k) {
    EXPECT_EQ(records[k].sequence, 2 + k);
    EXPECT_EQ(records[k].count, static_cast<std::int64_t>(10 * (3 + k)));
    EXPECT_EQ(records[k].bytes, records[k].count * 4);
    EXPECT_EQ(records[k].label_view(), "unit " + std::to_string(2 + k));
    EXPECT_EQ(records[k].state, CollectiveState::issued);
  }
}

TEST(FlightRecorder, FinishMarksOnceAndIgnoresOverwrittenEntries) {
  FlightRecorder recorder(2);
  recorder.issue("reduce_scatter", 8, DType::bfloat16, "bucket 0");
  recorder.issue("all_reduce", 8, DType::float64, "");
  recorder.finish(0, CollectiveState::completed);
  recorder.finish(0, CollectiveState::failed);  // a second finish does not change the first
  EXPECT_EQ(recorder.find(0)->state, CollectiveState::completed);
  EXPECT_GT(recorder.find(0)->finished_ns, 0);
  EXPECT_GE(recorder.find(0)->finished_ns, recorder.find(0)->issued_ns);
  EXPECT_EQ(recorder.find(0)->bytes, 16);  // bfloat16: 2 bytes per element
  recorder.issue("all_gather", 4, DType::float32, "");  // overwrites #0
  recorder.finish(0, CollectiveState::abandoned);        // #0 is gone: no effect on #2
  EXPECT_EQ(recorder.find(2)->state, CollectiveState::issued);
  recorder.finish(1, CollectiveState::abandoned);
  EXPECT_EQ(recorder.find(1)->state, CollectiveState::abandoned);
}

TEST(FlightRecorder, LabelsAreTruncatedAndDescribed) {
  FlightRecorder recorder(1);
  const std::string long_label(100, 'x');
  recorder.issue("all_gather", 1024, DType::float32, long_label);
  const CollectiveRecord& r = *recorder.find(0);
  EXPECT_EQ(r.label_view(), long_label.substr(0, 47));
  const std::string line = r.describe(r.issued_ns + 1'500'000);
  EXPECT_NE(line.find("#0 all_gather 4096 B float32 'xxx"), std::string::npos) << line;
  EXPECT_NE(line.find("issued for 1.500 ms"), std::string::npos) << line;
}

TEST(FlightRecorder, RefusesAnEmptyRing) {
  EXPECT_THROW(FlightRecorder(0), InvalidArgument);
  EXPECT_THROW(FlightRecorder(-3), InvalidArgument);
}

}  // namespace
}  // namespace zs
