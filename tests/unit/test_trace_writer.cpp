// The Chrome trace writer (runtime/trace_writer.hpp) and the JSON writer under it: the
// document parses back (with our parser here; tests/profiler/validate_trace.sh checks a real
// trace with Python's json module too), one process per rank, times aligned by the clock
// offset, collectives as matched async pairs, strings escaped.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <map>
#include <string>

#include "zeroshard/error.hpp"
#include "zeroshard/runtime/json.hpp"
#include "zeroshard/runtime/trace_writer.hpp"

namespace zs::runtime {
namespace {

timeline::Event event(timeline::Kind kind, const char* name, const char* label, int thread, std::int64_t begin,
                      std::int64_t end, std::int64_t sequence = -1, std::int64_t bytes = -1) {
  timeline::Event e;
  e.kind = kind;
  e.name = name;
  std::snprintf(e.label, sizeof e.label, "%s", label);
  e.thread = thread;
  e.begin_ns = begin;
  e.end_ns = end;
  e.sequence = sequence;
  e.bytes = bytes;
  return e;
}

const JsonValue* member(const JsonValue& object, const std::string& key) {
  for (const auto& [k, v] : object.object)
    if (k == key) return &v;
  return nullptr;
}

TEST(JsonWriter, RoundTripsThroughTheParser) {
  const std::string tricky = "quote \" backslash \\ newline \n tab \t bell \x07 utf-8 \xc3\xa9";
  const JsonValue document = JsonValue::object_of(
      {{"text", JsonValue::of(tricky)},
       {"integer", JsonValue::of(std::int64_t{1} << 52)},
       {"real", JsonValue::of(0.1)},
       {"nan", JsonValue::of(std::nan(""))},
       {"flag", JsonValue::of(true)},
       {"list", JsonValue::array_of({JsonValue::of(1), JsonValue::of("two"), JsonValue{}})}});
  const std::string text = write_json(document);
  EXPECT_EQ(text.find('\n'), std::string::npos) << "raw control characters must be escaped";
  const JsonValue back = parse_json(text, "written");
  EXPECT_EQ(member(back, "text")->string, tricky);
  EXPECT_EQ(member(back, "integer")->number, 4503599627370496.0);
  EXPECT_TRUE(member(back, "integer")->integral);
  EXPECT_EQ(member(back, "real")->number, 0.1);  // 17 significant digits round-trip
  EXPECT_EQ(member(back, "nan")->type, JsonValue::Type::null);
  EXPECT_TRUE(member(back, "flag")->boolean);
  ASSERT_EQ(member(back, "list")->array.size(), 3u);
  EXPECT_EQ(member(back, "list")->array[1].string, "two");
}

TEST(JsonParser, DecodesUnicodeEscapes) {
  EXPECT_EQ(parse_json(R"("\u00e9\u20ac\ud83d\ude00\u0007")", "test").string, "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\x07");
  EXPECT_THROW(parse_json(R"("\ud83d")", "test"), InvalidArgument);
  EXPECT_THROW(parse_json(R"("\u12")", "test"), InvalidArgument);
}

TEST(TraceWriter, MergesRanksIntoOneDocumentWithAlignedClocks) {
  RankTimeline rank0{.rank = 0, .host = "node-a", .events = {}, .thread_names = {"training"}, .clock_offset_ns = 0,
                     .origin_ns = 1'000'000};
  rank0.events.push_back(event(timeline::Kind::span, "forward", "unit 0", 0, 1'000'000, 1'500'000));
  rank0.events.push_back(event(timeline::Kind::collective, "all_gather", "unit 1", 0, 1'100'000, 1'900'000, 7, 4096));
  // Rank 1's clock runs 250 us behind rank 0's: its events move 250 us later. A second thread
  // (the checkpoint writer) and a label that needs escaping.
  RankTimeline rank1{.rank = 1, .host = "node-b", .events = {}, .thread_names = {"training", "checkpoint writer"},
                     .clock_offset_ns = 250'000, .origin_ns = 1'000'000};
  rank1.events.push_back(event(timeline::Kind::span, "backward", "unit \"0\"", 0, 2'000'000, 2'400'000));
  rank1.events.push_back(event(timeline::Kind::span, "checkpoint write files", "", 1, 2'100'000, 3'100'000));
  const std::string text = merge_chrome_traces({chrome_trace_events(rank0), chrome_trace_events(rank1)},
                                               {{"steps", "1:4"}});
  const JsonValue trace = parse_json(text, "trace");
  ASSERT_EQ(trace.type, JsonValue::Type::object);
  EXPECT_EQ(member(trace, "displayTimeUnit")->string, "ms");
  EXPECT_EQ(member(*member(trace, "otherData"), "steps")->string, "1:4");
  const JsonValue& events = *member(trace, "traceEvents");
  std::map<int, std::string> processes;
  std::map<std::pair<int, int>, std::string> threads;
  std::map<std::string, const JsonValue*> by_name;
  int begins = 0, ends = 0;
  for (const JsonValue& e : events.array) {
    const std::string ph = member(e, "ph")->string;
    const int pid = static_cast<int>(member(e, "pid")->number);
    const std::string name = member(e, "name")->string;
    if (ph == "M" && name == "process_name") processes[pid] = member(*member(e, "args"), "name")->string;
    if (ph == "M" && name == "thread_name")
      threads[{pid, static_cast<int>(member(e, "tid")->number)}] = member(*member(e, "args"), "name")->string;
    if (ph == "b") ++begins;
    if (ph == "e") ++ends;
    if (ph == "X" || ph == "b") by_name[name] = &e;
  }
  EXPECT_EQ(processes, (std::map<int, std::string>{{0, "rank 0 (node-a)"}, {1, "rank 1 (node-b)"}}));
  EXPECT_EQ(threads.at({1, 1}), "checkpoint writer");
  EXPECT_EQ(threads.at({0, 0}), "training");
  EXPECT_EQ(begins, 1);
  EXPECT_EQ(ends, 1);
  ASSERT_TRUE(by_name.count("forward unit 0"));
  EXPECT_EQ(member(*by_name["forward unit 0"], "ts")->number, 0.0);
  EXPECT_EQ(member(*by_name["forward unit 0"], "dur")->number, 500.0);
  EXPECT_EQ(member(*by_name["forward unit 0"], "cat")->string, "compute");
  ASSERT_TRUE(by_name.count("backward unit \"0\""));
  EXPECT_EQ(member(*by_name["backward unit \"0\""], "ts")->number, 1250.0);  // 1000 us + 250 us offset
  ASSERT_TRUE(by_name.count("all_gather unit 1"));
  const JsonValue& gather = *by_name["all_gather unit 1"];
  EXPECT_EQ(member(gather, "cat")->string, "collective");
  EXPECT_EQ(member(*member(gather, "args"), "sequence")->number, 7.0);
  EXPECT_EQ(member(*member(gather, "args"), "bytes")->number, 4096.0);
  EXPECT_EQ(member(*by_name["checkpoint write files"], "cat")->string, "checkpoint");
}

TEST(TraceWriter, RefusesSomethingThatIsNotAnEventArray) {
  EXPECT_THROW(merge_chrome_traces({"{}"}, {}), InvalidArgument);
  EXPECT_THROW(merge_chrome_traces({"[{"}, {}), InvalidArgument);
}

}  // namespace
}  // namespace zs::runtime
