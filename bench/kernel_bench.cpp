// Compute kernels at the machine's speed, two tables.
//
// 1. The GEMMs of a Linear layer, several ways: ZeroShard's nn::Linear (Eigen, in
// blocks of output features with a progress call between blocks, as in training), the same
// products as one unblocked Eigen call, and OpenBLAS's cblas_sgemm when the library can be
// loaded (dlopen: no build dependency; bench/peer/setup.sh installs libopenblas0-pthread).
// Two bf16 rows answer issue 15's question (does a bf16 GEMM beat float32 on a CPU with
// AVX-512 BF16?): what mixed precision does today, bf16 weights widened to float32 (zs::widen,
// once before the forward and once before the backward, as GatherScheduler::materialize does)
// and then cblas_sgemm; and OpenBLAS's cblas_sbgemm (bf16 operands, float32 accumulation:
// vdpbf16ps in its Cooper Lake / Sapphire Rapids kernels) where the library exports it (Debian
// 12's OpenBLAS 0.3.21 does not; the row is then left out). The last column compares each way's
// forward output with float32's (max |diff| / max |y|): bf16 operands carry 8 significant bits.
// GFLOP/s, median (min-max) of interleaved repetitions, at 1 thread and at every core.
//
// 2. The fused optimizer update (AdamW and SGD with momentum: one pass over parameters,
//    gradients and states), in ns/element and GB/s, next to a streaming triad measured in the
//    same run: the memory-bandwidth roofline an elementwise update cannot beat.
//
//   build/bench/zs_kernel_bench [--rows 32] [--width 2048] [--reps 7] [--elements 16777216]
//
// Forward y = x W^T: [rows, in] x [in, out]; backward dW += g^T x: [out, rows] x [rows, in];
// dx = g W: [rows, out] x [out, in].
#include <dlfcn.h>

#include <Eigen/Core>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "zeroshard/build_info.hpp"
#include "zeroshard/dtype_convert.hpp"
#include "zeroshard/error.hpp"
#include "zeroshard/nn/compute_threads.hpp"
#include "zeroshard/nn/layers.hpp"
#include "zeroshard/runtime/optimizer.hpp"

namespace {

using Matrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using Map = Eigen::Map<Matrix>;

// cblas_sgemm and openblas_set_num_threads, when OpenBLAS is installed.
struct OpenBlas {
  using Sgemm = void (*)(int, int, int, int, int, int, float, const float*, int, const float*, int, float, float*, int);
  // bf16 operands as their 16-bit patterns (OpenBLAS's bfloat16 is a uint16_t).
  using Sbgemm = void (*)(int, int, int, int, int, int, float, const std::uint16_t*, int, const std::uint16_t*, int,
                          float, float*, int);
  Sgemm sgemm = nullptr;
  Sbgemm sbgemm = nullptr;
  void (*set_threads)(int) = nullptr;
  const char* (*corename)() = nullptr;
  OpenBlas() {
    for (const char* name : {"libopenblas.so.0", "/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0"}) {
      if (void* lib = dlopen(name, RTLD_NOW | RTLD_LOCAL)) {
        sgemm = reinterpret_cast<Sgemm>(dlsym(lib, "cblas_sgemm"));
        sbgemm = reinterpret_cast<Sbgemm>(dlsym(lib, "cblas_sbgemm"));
        set_threads = reinterpret_cast<void (*)(int)>(dlsym(lib, "openblas_set_num_threads"));
        corename = reinterpret_cast<const char* (*)()>(dlsym(lib, "openblas_get_corename"));
        if (sgemm) return;
      }
    }
  }
};
enum { kRowMajor = 101, kNoTrans = 111, kTrans = 112 };
constexpr std::size_t kFirstOpenBlasRow = 2;  // the rows: nn::Linear, Eigen, then OpenBLAS's

double seconds_of(const std::function<void()>& f, int inner) {
  f();  // warm: caches, first-touch of outputs
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < inner; ++i) f();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() / inner;
}

std::string spread(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  char text[64];
  std::snprintf(text, sizeof text, "%.1f (%.1f-%.1f)", v[v.size() / 2], v.front(), v.back());
  return text;
}

// Table 2: the optimizer update against the bandwidth a streaming triad reaches here.
void optimizer_table(std::int64_t n, int reps) {
  zs::AlignedFloats p(n, 0.1f), g(n, 0.01f), a(n, 1.0f), b(n, 2.0f), c(n, 0.0f);
  struct Row {
    const char* name;
    zs::OptimizerKind kind;
    double momentum;
    double bytes;  // moved per element: reads + writes of parameters, gradients, states
  };
  const Row rows[] = {{"AdamW (fused: p, g, m, v in one pass)", zs::OptimizerKind::adamw, 0, 16 + 12},
                      {"SGD, momentum 0.9 (fused: p, g, buf)", zs::OptimizerKind::sgd, 0.9, 12 + 8}};
  std::vector<double> triad;
  std::vector<std::vector<double>> update(std::size(rows));
  std::vector<zs::AlignedFloats> states;
  for (const Row& row : rows) states.emplace_back(static_cast<std::size_t>(2 * n), 0.0f);
  const std::vector<zs::ParameterRun> runs{{0, n, true}};
  for (int rep = 0; rep < reps; ++rep) {
    triad.push_back(12.0 * n / seconds_of([&] {
      for (std::int64_t i = 0; i < n; ++i) c[i] = a[i] + 0.5f * b[i];
    }, 3) / 1e9);
    for (std::size_t k = 0; k < std::size(rows); ++k) {
      zs::OptimizerConfig config;
      config.kind = rows[k].kind;
      config.momentum = rows[k].momentum;
      const zs::Optimizer optimizer(config);
      const std::int64_t state = n * optimizer.state_per_element();
      std::int64_t step = 1;
      update[k].push_back(1e9 * seconds_of([&] {
        optimizer.update(p, g, std::span<float>(states[k].data(), state), runs, 1e-3, ++step);
      }, 3) / n);
    }
  }
  std::sort(triad.begin(), triad.end());
  const double roof = triad[triad.size() / 2];
  std::printf("\nOptimizer update, %lld elements, %d thread(s); streaming triad c = a + s*b (12 bytes/element): "
              "%s GB/s\n\n| update | ns/element | bytes/element | GB/s | of the triad's GB/s |\n|---|---:|---:|---:|---:|\n",
              static_cast<long long>(n), zs::nn::compute_threads(), spread(triad).c_str());
  for (std::size_t k = 0; k < std::size(rows); ++k) {
    std::vector<double> v = update[k];
    std::sort(v.begin(), v.end());
    const double ns = v[v.size() / 2];
    std::printf("| %s | %s | %.0f | %.1f | %.0f%% |\n", rows[k].name, spread(v).c_str(), rows[k].bytes, rows[k].bytes / ns,
                100 * rows[k].bytes / ns / roof);
  }
}

}  // namespace

int main(int argc, char** argv) {
  try {
    std::int64_t rows = 32, width = 2048, elements = std::int64_t{1} << 24;
    int reps = 7;
    for (int i = 1; i < argc; i += 2) {
      const std::string arg = argv[i];
      if (arg == "--help" || arg == "-h") {
        std::puts("zs_kernel_bench [--rows 32] [--width 2048] [--reps 7] [--elements 16777216]   "
                  "(bench/kernel_bench.cpp's header)");
        return 0;
      }
      if (i + 1 >= argc) throw zs::InvalidArgument(arg + " needs a value");
      if (arg == "--rows") rows = std::stoll(argv[i + 1]);
      else if (arg == "--width") width = std::stoll(argv[i + 1]);
      else if (arg == "--reps") reps = std::stoi(argv[i + 1]);
      else if (arg == "--elements") elements = std::stoll(argv[i + 1]);
      else throw zs::InvalidArgument("unknown option " + arg + " (see bench/kernel_bench.cpp)");
    }
    const std::int64_t in = width, out = width;
    OpenBlas blas;
    std::printf("Linear(%lld, %lld) GEMMs, %lld rows; %s; nn GEMM kernels: %s; OpenBLAS (dlopen): %s, cblas_sbgemm %s\n\n",
                static_cast<long long>(in), static_cast<long long>(out), static_cast<long long>(rows), zs::describe_build().c_str(),
                zs::nn::gemm_backend().c_str(), blas.sgemm ? (blas.corename ? blas.corename() : "loaded") : "not installed",
                blas.sbgemm ? "exported" : "not exported");

    zs::nn::Linear linear("fc", in, out);
    linear.allocate_parameters();
    zs::nn::initialize_parameters(linear, 1);
    // No bias: every way then computes the same y = x W^T (the max-diff column compares them).
    std::fill(linear.bias.value.data(), linear.bias.value.data() + linear.bias.value.numel(), 0.0f);
    zs::Tensor x({rows, in}), g({rows, out});
    for (std::int64_t i = 0; i < x.numel(); ++i) x.data()[i] = static_cast<float>(i % 97) / 97.0f - 0.5f;
    for (std::int64_t i = 0; i < g.numel(); ++i) g.data()[i] = static_cast<float>(i % 89) / 89.0f - 0.5f;
    Matrix y(rows, out), dw(out, in), dx(rows, in);
    const Map w(linear.weight.value.data(), out, in);
    const Map xm(x.data(), rows, in), gm(g.data(), rows, out);
    int polls = 0;
    const std::function<void()> progress = [&polls] { ++polls; };
    zs::nn::ForwardContext context;
    context.progress = &progress;

    const double flops = 2.0 * rows * in * out;  // per product; forward+backward is 3 products
    // The bf16 rows' operands: the same values rounded to bf16 (round to nearest even).
    std::vector<std::uint16_t> w16(w.size()), x16(x.numel()), g16(g.numel());
    zs::narrow(w.data(), w16.data(), zs::DType::bfloat16, w.size());
    zs::narrow(x.data(), x16.data(), zs::DType::bfloat16, x.numel());
    zs::narrow(g.data(), g16.data(), zs::DType::bfloat16, g.numel());
    Matrix widened(out, in);
    const auto sgemm_products = [&](const float* weight) {
      const int m = static_cast<int>(rows), n = static_cast<int>(out), k = static_cast<int>(in);
      blas.sgemm(kRowMajor, kNoTrans, kTrans, m, n, k, 1.0f, x.data(), k, weight, k, 0.0f, y.data(), n);
      blas.sgemm(kRowMajor, kTrans, kNoTrans, n, k, m, 1.0f, g.data(), n, x.data(), k, 1.0f, dw.data(), k);
      blas.sgemm(kRowMajor, kNoTrans, kNoTrans, m, k, n, 1.0f, g.data(), n, weight, k, 0.0f, dx.data(), k);
    };
    struct Way {
      const char* name;
      std::function<void()> forward_backward;
    };
    std::vector<Way> ways = {
        {"nn::Linear (blocked, progress polls)",
         [&] {
           linear.forward(x, context);
           linear.backward(g);
         }},
        {"Eigen, one call per product",
         [&] {
           y.noalias() = xm * w.transpose();
           dw.noalias() += gm.transpose() * xm;
           dx.noalias() = gm * w;
         }},
    };
    if (blas.sgemm) ways.push_back({"OpenBLAS cblas_sgemm", [&] { sgemm_products(w.data()); }});

    if (blas.sgemm)
      ways.push_back({"bf16 weights widened (zs::widen) + cblas_sgemm", [&] {
                        zs::widen(w16.data(), zs::DType::bfloat16, widened.data(), widened.size());  // before forward
                        zs::widen(w16.data(), zs::DType::bfloat16, widened.data(), widened.size());  // before backward
                        sgemm_products(widened.data());
                      }});
    if (blas.sbgemm)
      ways.push_back({"OpenBLAS cblas_sbgemm (bf16 x bf16 -> float32)", [&] {
                        const int m = static_cast<int>(rows), n = static_cast<int>(out), k = static_cast<int>(in);
                        blas.sbgemm(kRowMajor, kNoTrans, kTrans, m, n, k, 1.0f, x16.data(), k, w16.data(), k, 0.0f, y.data(), n);
                        blas.sbgemm(kRowMajor, kTrans, kNoTrans, n, k, m, 1.0f, g16.data(), n, x16.data(), k, 1.0f, dw.data(), k);
                        blas.sbgemm(kRowMajor, kNoTrans, kNoTrans, m, k, n, 1.0f, g16.data(), n, w16.data(), k, 0.0f, dx.data(), k);
                      }});
    // Each way's forward output against float32 Eigen's: max |y - reference| / max |reference|
    // (relative to the output's scale, so outputs near zero do not inflate it).
    Matrix reference = xm * w.transpose();
    std::vector<double> max_rel_diff;
    for (std::size_t k = 0; k < ways.size(); ++k) {
      y.setZero();
      ways[k].forward_backward();
      // nn::Linear keeps its own output; every other way writes y.
      const Matrix produced = k == 0 ? Matrix(Eigen::Map<const Matrix>(linear.forward(x, context).data(), rows, out)) : y;
      max_rel_diff.push_back((produced - reference).cwiseAbs().maxCoeff() / reference.cwiseAbs().maxCoeff());
    }

    const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    std::printf("| threads | implementation | forward+backward GFLOP/s | vs best | max abs diff of y / max abs y (vs float32) |\n"
                "|---:|---|---:|---:|---:|\n");
    for (int threads : {1, cores}) {
      zs::nn::set_compute_threads(threads);
      std::vector<std::vector<double>> rates(ways.size());
      // Samples of ~0.2 s at 10 GFLOP/s, 1-20 calls each.
      const int inner = std::clamp(static_cast<int>(2e9 / (3 * flops)), 1, 20);
      for (int rep = 0; rep < reps; ++rep)
        for (std::size_t k = 0; k < ways.size(); ++k) {
          // The dlopen'ed OpenBLAS is the library nn's GEMMs run on: its own threads only for
          // its own row; nn::Linear keeps it at 1 (its threads share the blocks instead).
          if (blas.set_threads) blas.set_threads(k >= kFirstOpenBlasRow ? threads : 1);
          rates[k].push_back(3 * flops / seconds_of(ways[k].forward_backward, inner) / 1e9);
        }
      double best = 0;
      for (auto& r : rates) {
        std::sort(r.begin(), r.end());
        best = std::max(best, r[r.size() / 2]);
      }
      for (std::size_t k = 0; k < ways.size(); ++k)
        std::printf("| %d | %s | %s | %.2fx | %.1e |\n", threads, ways[k].name, spread(rates[k]).c_str(),
                    rates[k][rates[k].size() / 2] / best, max_rel_diff[k]);
      if (threads == cores) break;
    }
    polls = 0;
    ways[0].forward_backward();
    std::printf("\nprogress polls per forward+backward of nn::Linear: %d\n", polls);
    zs::nn::set_compute_threads(1);
    optimizer_table(elements, reps);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "zs_kernel_bench: %s\n", e.what());
    return 2;
  }
}
