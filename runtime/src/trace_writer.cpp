#include "zeroshard/runtime/trace_writer.hpp"

#include <set>

#include "zeroshard/error.hpp"
#include "zeroshard/runtime/json.hpp"

namespace zs::runtime {

namespace {

using Member = std::pair<std::string, JsonValue>;

JsonValue metadata(const char* name, int pid, int tid, JsonValue args) {
  std::vector<Member> m{{"ph", JsonValue::of("M")}, {"name", JsonValue::of(name)}, {"pid", JsonValue::of(pid)}};
  if (tid >= 0) m.emplace_back("tid", JsonValue::of(tid));
  m.emplace_back("args", std::move(args));
  return JsonValue::object_of(std::move(m));
}

// "forward unit 3"; "wait" alone when there is no label.
std::string full_name(const timeline::Event& e) {
  std::string name = e.name;
  if (e.label[0]) (name += ' ') += e.label;
  return name;
}

const char* category(const timeline::Event& e) {
  if (e.kind == timeline::Kind::collective) return "collective";
  const std::string_view name = e.name;
  if (name == "wait") return "wait";
  if (name.rfind("checkpoint", 0) == 0) return "checkpoint";
  return "compute";
}

}  // namespace

std::string chrome_trace_events(const RankTimeline& rank) {
  const int pid = rank.rank;
  // Microseconds on rank 0's clock since the origin (what "ts" means to a trace viewer).
  auto micros = [&](std::int64_t ns) { return static_cast<double>(ns + rank.clock_offset_ns - rank.origin_ns) / 1e3; };
  std::vector<JsonValue> out;
  out.push_back(metadata("process_name", pid, -1,
                         JsonValue::object_of({{"name", JsonValue::of("rank " + std::to_string(rank.rank) +
                                                                       (rank.host.empty() ? "" : " (" + rank.host + ")"))}})));
  out.push_back(metadata("process_sort_index", pid, -1, JsonValue::object_of({{"sort_index", JsonValue::of(pid)}})));
  std::set<int> threads;
  for (const timeline::Event& e : rank.events) threads.insert(e.thread);
  for (int t : threads) {
    const bool named = t >= 0 && static_cast<std::size_t>(t) < rank.thread_names.size() &&
                       !rank.thread_names[static_cast<std::size_t>(t)].empty();
    out.push_back(metadata("thread_name", pid, t,
                           JsonValue::object_of({{"name", JsonValue::of(named ? rank.thread_names[static_cast<std::size_t>(t)]
                                                                              : "thread " + std::to_string(t))}})));
  }
  std::int64_t async_id = 0;
  for (const timeline::Event& e : rank.events) {
    std::vector<Member> args;
    if (e.label[0]) args.emplace_back("label", JsonValue::of(std::string_view(e.label)));
    if (e.sequence >= 0) args.emplace_back("sequence", JsonValue::of(e.sequence));
    if (e.bytes >= 0) args.emplace_back("bytes", JsonValue::of(e.bytes));
    std::vector<Member> common{{"name", JsonValue::of(full_name(e))},
                               {"cat", JsonValue::of(category(e))},
                               {"pid", JsonValue::of(pid)},
                               {"tid", JsonValue::of(e.thread)}};
    if (e.kind == timeline::Kind::span) {
      std::vector<Member> m = common;
      m.emplace_back("ph", JsonValue::of("X"));
      m.emplace_back("ts", JsonValue::of(micros(e.begin_ns)));
      m.emplace_back("dur", JsonValue::of(static_cast<double>(e.end_ns - e.begin_ns) / 1e3));
      m.emplace_back("args", JsonValue::object_of(std::move(args)));
      out.push_back(JsonValue::object_of(std::move(m)));
    } else {
      // Collectives overlap one another: async events, paired by (cat, id), each on its own row.
      const JsonValue id = JsonValue::of(std::to_string(pid) + "." + std::to_string(async_id++));
      std::vector<Member> begin = common, end = common;
      begin.emplace_back("ph", JsonValue::of("b"));
      begin.emplace_back("id", id);
      begin.emplace_back("ts", JsonValue::of(micros(e.begin_ns)));
      begin.emplace_back("args", JsonValue::object_of(std::move(args)));
      end.emplace_back("ph", JsonValue::of("e"));
      end.emplace_back("id", id);
      end.emplace_back("ts", JsonValue::of(micros(e.end_ns)));
      out.push_back(JsonValue::object_of(std::move(begin)));
      out.push_back(JsonValue::object_of(std::move(end)));
    }
  }
  return write_json(JsonValue::array_of(std::move(out)));
}

std::string merge_chrome_traces(const std::vector<std::string>& rank_event_arrays,
                                const std::vector<std::pair<std::string, std::string>>& notes) {
  std::vector<JsonValue> events;
  for (std::size_t r = 0; r < rank_event_arrays.size(); ++r) {
    JsonValue array = parse_json(rank_event_arrays[r], "rank " + std::to_string(r) + "'s trace events");
    if (array.type != JsonValue::Type::array)
      throw InvalidArgument("rank " + std::to_string(r) + "'s trace events are " + type_name(array.type) +
                            ", not an array");
    for (JsonValue& e : array.array) events.push_back(std::move(e));
  }
  std::vector<Member> other;
  for (const auto& [key, text] : notes) other.emplace_back(key, JsonValue::of(text));
  return write_json(JsonValue::object_of({{"traceEvents", JsonValue::array_of(std::move(events))},
                                          {"displayTimeUnit", JsonValue::of("ms")},
                                          {"otherData", JsonValue::object_of(std::move(other))}}));
}

}  // namespace zs::runtime
