// zeroshard-ckpt: list, inspect, verify, seal and consolidate ZeroShard checkpoints. One process,
// no MPI. Exit codes: 0 success, 1 the checkpoint is missing, damaged or incomplete, 2 usage.
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "zeroshard/checkpoint/checkpoint_directory.hpp"
#include "zeroshard/checkpoint/checkpoint_error.hpp"
#include "zeroshard/checkpoint/checkpoint_reader.hpp"
#include "zeroshard/checkpoint/checkpoint_tools.hpp"
#include "zeroshard/checkpoint/file_manifest.hpp"
#include "zeroshard/sharding/fragment_map.hpp"

namespace {

using namespace zs::checkpoint;

constexpr int kOk = 0, kBadCheckpoint = 1, kUsage = 2;

const char* kUsageText = R"(usage: zeroshard-ckpt COMMAND DIR [TAG] [options]

  list DIR                        every tag: step, world size, stage, size, status
  inspect DIR [TAG]               training state, config, tensors and how they are sharded
  verify DIR [TAG]                every file against the manifest, every checksum, every
                                  fragment, every shard present
  seal DIR [TAG]                  verify a checkpoint saved before manifests, then add its
                                  manifest (its files are checked before every later load)
  consolidate DIR [TAG] --out FILE [--optimizer] [--dtype float32|bf16|fp16]
                                  one plain HDF5 file with full tensors under
                                  /params/<name> (float32, or the masters rounded to
                                  bf16/fp16 with --dtype) and, with --optimizer, the
                                  float32 /optimizer/<state>/<name>

TAG defaults to the one DIR/latest names. Exit codes: 0 ok, 1 the checkpoint is missing,
damaged or incomplete, 2 usage error.
)";

double mib(std::int64_t bytes) { return static_cast<double>(bytes) / (1024.0 * 1024.0); }

int list(const std::string& dir) {
  const auto tags = list_tags(dir);
  std::printf("%-24s %10s %6s %6s %12s  %s\n", "tag", "step", "ranks", "stage", "size (MiB)", "status");
  for (const TagEntry& t : tags) {
    if (t.complete)
      std::printf("%-24s %10lld %6d %6d %12.2f  %s\n", t.tag.c_str(), static_cast<long long>(t.summary.state.step),
                  t.summary.world_size, t.summary.state.stage, mib(t.bytes),
                  t.is_latest            ? "complete, latest"
                  : t.off_latest_lineage ? "complete, not in latest's lineage (abandoned branch or another run)"
                                         : "complete");
    else
      std::printf("%-24s %10s %6s %6s %12.2f  incomplete: %s\n", t.tag.c_str(), "-", "-", "-", mib(t.bytes),
                  t.problem.c_str());
  }
  return kOk;
}

int inspect(const std::string& dir, const std::string& tag) {
  CheckpointReader reader(dir, tag);
  const TrainingState& s = reader.state();
  std::printf("checkpoint %s\n  step %lld, micro-step %lld, saved by %d ranks at ZeRO stage %d, optimizer %s, mode %s\n",
              reader.directory().c_str(), static_cast<long long>(s.step), static_cast<long long>(s.micro_step),
              reader.world_size(), s.stage, s.optimizer.c_str(), to_string(reader.mode()).c_str());
  if (s.data_parallel_size > reader.world_size())
    std::printf("  hybrid sharding: trained on %d ranks, %d replicas of these %d shards (one copy saved)\n",
                s.data_parallel_size, s.data_parallel_size / reader.world_size(), reader.world_size());
  std::printf("  buffers per unit:");
  for (const auto& b : reader.buffers()) std::printf(" %s", b.c_str());
  std::printf("\n  client state:");
  for (const auto& [k, v] : s.client_state) std::printf(" %s=%lld", k.c_str(), static_cast<long long>(v));
  std::printf("\n  config:\n");
  std::string line;
  for (char c : s.config) {
    if (c != '\n') { line += c; continue; }
    std::printf("    %s\n", line.c_str());
    line.clear();
  }
  std::printf("  %-28s %-14s %-8s %-10s %12s %12s  %s\n", "tensor", "shape", "dtype", "unit", "offset", "elements",
              "held by ranks (elements)");
  for (std::size_t u = 0; u < reader.units().size(); ++u) {
    const auto& unit = reader.units()[u];
    std::vector<std::vector<zs::sharding::Fragment>> by_rank;
    for (int r = 0; r < unit.layout.world_size(); ++r) by_rank.push_back(zs::sharding::fragment_map(unit.layout, r));
    for (std::size_t t = 0; t < unit.layout.tensors().size(); ++t) {
      const auto& slot = unit.layout.tensors()[t];
      std::string holders;
      for (int r = 0; r < unit.layout.world_size(); ++r)
        for (const auto& f : by_rank[r])
          if (f.tensor == t)
            holders += (holders.empty() ? "" : " ") + std::to_string(r) + "[" + std::to_string(f.tensor_offset) + ":" +
                       std::to_string(f.tensor_offset + f.length) + ")";
      std::printf("  %-28s %-14s %-8s %-10s %12lld %12lld  %s\n", slot.spec.name.c_str(),
                  ("[" + shape_to_text(slot.spec.shape) + "]").c_str(), zs::to_string(slot.spec.dtype).c_str(),
                  unit.name.c_str(), static_cast<long long>(slot.offset), static_cast<long long>(slot.numel),
                  holders.c_str());
    }
  }
  return kOk;
}

int verify(const std::string& dir, const std::string& tag) {
  const VerifyReport report = verify_checkpoint(dir, tag);
  if (!report.warning.empty()) std::printf("warning: %s\n", report.warning.c_str());
  if (report.problems.empty()) {
    std::printf("OK: %s/%s: %d shards in %d file(s), %lld tensors, %.2f MiB checksummed, every fragment present\n", dir.c_str(),
                report.tag.c_str(), report.shards, report.files, static_cast<long long>(report.tensors), mib(report.bytes_checked));
    return kOk;
  }
  std::printf("DAMAGED: %s/%s: %zu problem(s)\n", dir.c_str(), report.tag.c_str(), report.problems.size());
  for (const auto& p : report.problems) std::printf("  - %s\n", p.c_str());
  return kBadCheckpoint;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> positional;
  std::string out;
  bool optimizer = false;
  zs::DType dtype = zs::DType::float32;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::fputs(kUsageText, stdout);
      return kOk;
    }
    if (arg == "--optimizer") optimizer = true;
    else if ((arg == "--dtype" && i + 1 < argc) || arg.rfind("--dtype=", 0) == 0) {
      const std::string name = arg == "--dtype" ? argv[++i] : arg.substr(8);
      // DeepSpeed / PyTorch spellings too.
      const std::string canonical = name == "bf16" ? "bfloat16" : name == "fp16" ? "float16" : name == "fp32" ? "float32" : name;
      if (canonical != "float32" && canonical != "bfloat16" && canonical != "float16") {
        std::fprintf(stderr, "zeroshard-ckpt: --dtype %s: use float32 (fp32), bfloat16 (bf16) or float16 (fp16)\n", name.c_str());
        return kUsage;
      }
      dtype = zs::parse_dtype(canonical);
    }
    else if (arg == "--out" && i + 1 < argc) out = argv[++i];
    else if (arg.rfind("--out=", 0) == 0) out = arg.substr(6);
    else if (arg.rfind("--", 0) == 0) {
      std::fprintf(stderr, "zeroshard-ckpt: unknown option %s\n\n%s", arg.c_str(), kUsageText);
      return kUsage;
    } else positional.push_back(arg);
  }
  if (positional.size() < 2 || positional.size() > 3) {
    std::fputs(kUsageText, stderr);
    return kUsage;
  }
  const std::string& command = positional[0];
  const std::string& dir = positional[1];
  const std::string tag = positional.size() > 2 ? positional[2] : "";
  try {
    if (command == "list" && positional.size() == 2) return list(dir);
    if (command == "inspect") return inspect(dir, tag);
    if (command == "verify") return verify(dir, tag);
    if (command == "seal") {
      const std::string sealed = seal_checkpoint(dir, tag);
      std::printf("sealed %s/%s: verified, and %s written\n", dir.c_str(), sealed.c_str(), kManifestFileName);
      return kOk;
    }
    if (command == "consolidate") {
      if (out.empty()) {
        std::fprintf(stderr, "zeroshard-ckpt consolidate needs --out FILE\n");
        return kUsage;
      }
      const std::string done = consolidate_checkpoint(dir, tag, out, optimizer, dtype);
      std::printf("consolidated %s/%s into %s (parameters in %s%s)\n", dir.c_str(), done.c_str(), out.c_str(),
                  zs::to_string(dtype).c_str(), optimizer ? ", with float32 optimizer states" : "");
      return kOk;
    }
  } catch (const zs::InvalidArgument& e) {
    std::fprintf(stderr, "zeroshard-ckpt: %s\n", e.what());
    return kUsage;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "zeroshard-ckpt: %s\n", e.what());
    return kBadCheckpoint;
  }
  std::fprintf(stderr, "zeroshard-ckpt: unknown command '%s'\n\n%s", command.c_str(), kUsageText);
  return kUsage;
}
