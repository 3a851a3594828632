// Fashion-MNIST classifier trained with ZeRO under mpirun.
//
//   zs-mpirun -np 4 build/examples/zs_fashion_mnist --stage 3
//
// Run with --help for every option. Progress (epoch, step, loss, lr, samples/s, model-state
// memory per rank) on rank 0; metrics as JSON lines; a memory report at the end.
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "block_repeats.hpp"
#include "fashion_mnist_data.hpp"
#include "number_text.hpp"
#include "option_values.hpp"
#include "model_state_report.hpp"
#include "progress_estimates.hpp"
#include "resume_plan.hpp"
#include "start_up.hpp"
#include "zeroshard/comm/agreement.hpp"
#include "zeroshard/comm/mpi_check.hpp"
#include "zeroshard/comm/mpi_environment.hpp"
#include "zeroshard/runtime/config.hpp"
#include "zeroshard/runtime/distributed_sampler.hpp"
#include "zeroshard/runtime/engine.hpp"

namespace {

using zs::examples::json_number;

struct Options {
  std::string config_path;
  std::vector<std::string> overrides;
  std::string data_dir = "/usr/share/datasets/fashion-mnist";
  std::string metrics_path = "fashion_mnist_metrics.jsonl";
  int epochs = 10;
  std::int64_t hidden = 512;
  float dropout = 0.2f;
  int block_repeats = 0;
  double layer_drop = 0;
  int log_every = 100;
  double peak_tflops = 0;
  std::string save_dir;
  std::int64_t save_every = 0;
  bool resume = false;
  bool help = false;
};

const char* kHelp = R"(zs_fashion_mnist: a Fashion-MNIST MLP (784-H-H/2-10, ReLU, dropout) trained with ZeRO.

Options:
  --config FILE        JSON training configuration (keys: docs/config.md)
  --KEY=VALUE          override any configuration key, e.g. --optimizer.params.lr=0.002
  --stage N            shorthand for --zero_optimization.stage=N (0-3)
  --epochs N           epochs to train (default 10)
  --hidden N           width of the first hidden layer (default 512)
  --dropout P          dropout probability (default 0.2)
  --block-repeats R    add one weight-shared block Linear(H/2, H/2)+ReLU after fc2, applied R
                       times per forward (default 0: no block)
  --layer-drop P       in training, skip each repeat of the block after the first with
                       probability P, drawn from the seed and the step: the unit order changes
                       between steps (stage 3 gathers on demand where it does)
  --data-dir DIR       folder with the idx .gz files (default /usr/share/datasets/fashion-mnist)
  --metrics FILE       JSON-lines metrics written by rank 0 (default fashion_mnist_metrics.jsonl)
  --log-every N        progress line every N optimizer steps (default 100)
  --peak-tflops X      the job's peak TFLOP/s for MFU (default: detected from cores, clock and
                       the build's vector ISA; docs/performance.md, "ETA and MFU")
  --save-dir DIR       checkpoint directory (DIR/TAG/ per checkpoint, DIR/latest); a final
                       checkpoint is written there at the end of training
  --save-every N       also checkpoint every N optimizer steps (needs --save-dir)
  --resume             continue from DIR/latest if there is one (any world size or stage:
                       parameters, optimizer, LR schedule and data position are restored)
  --help               this text

Without --config, the example uses adamw lr 2e-3 and a cosine schedule over the run with 200
warmup steps (micro-batch 64 per rank); --KEY=VALUE overrides apply on top either way.
)";

Options parse(int argc, char** argv) {
  Options o;
  for (zs::examples::CommandLine args(argc, argv); args.next();) {
    const std::string name = args.name();
    auto value = [&] { return args.value(); };
    if (name == "--help") o.help = true;
    else if (name == "--config") o.config_path = value();
    else if (name == "--stage") o.overrides.push_back("zero_optimization.stage=" + value());
    else if (name == "--epochs") o.epochs = zs::examples::whole_number<decltype(o.epochs)>(name, value());
    else if (name == "--hidden") o.hidden = zs::examples::whole_number<decltype(o.hidden)>(name, value());
    else if (name == "--dropout") o.dropout = static_cast<decltype(o.dropout)>(zs::examples::finite_number(name, value()));
    else if (name == "--block-repeats") o.block_repeats = zs::examples::whole_number<decltype(o.block_repeats)>(name, value());
    else if (name == "--layer-drop") o.layer_drop = static_cast<decltype(o.layer_drop)>(zs::examples::finite_number(name, value()));
    else if (name == "--data-dir") o.data_dir = value();
    else if (name == "--metrics") o.metrics_path = value();
    else if (name == "--log-every") o.log_every = zs::examples::whole_number<decltype(o.log_every)>(name, value());
    else if (name == "--peak-tflops") o.peak_tflops = zs::examples::finite_number(name, value());
    else if (name == "--save-dir") o.save_dir = value();
    else if (name == "--save-every") o.save_every = zs::examples::whole_number<decltype(o.save_every)>(name, value());
    else if (name == "--resume") o.resume = true;
    else o.overrides.push_back(args.configuration_override());
  }
  if (o.epochs < 1) throw zs::InvalidArgument("--epochs must be >= 1");
  if (o.log_every < 1) throw zs::InvalidArgument("--log-every must be >= 1 (optimizer steps between progress lines)");
  if (o.hidden < 2) throw zs::InvalidArgument("--hidden must be >= 2 (the second layer has hidden / 2 features)");
  if (!(o.dropout >= 0 && o.dropout < 1)) throw zs::InvalidArgument("--dropout must be in [0, 1)");
  if (o.save_every < 0) throw zs::InvalidArgument("--save-every must be >= 0");
  if (o.peak_tflops < 0) throw zs::InvalidArgument("--peak-tflops must be > 0 (or 0: detect)");
  if (o.block_repeats < 0) throw zs::InvalidArgument("--block-repeats must be >= 0");
  if (o.layer_drop > 0 && o.block_repeats < 2)
    throw zs::InvalidArgument("--layer-drop skips repeats of the shared block: give --block-repeats 2 or more");
  if ((o.save_every > 0 || o.resume) && o.save_dir.empty())
    throw zs::InvalidArgument("--save-every and --resume need --save-dir DIR");
  return o;
}

void fill_batch(const zs::examples::Dataset& data, const std::vector<std::int64_t>& indices, zs::Tensor& x,
                std::vector<std::int32_t>& y) {
  const auto n = static_cast<std::int64_t>(indices.size());
  x.resize({n, data.features});
  y.resize(n);
  for (std::int64_t k = 0; k < n; ++k) {
    std::copy_n(data.images.begin() + indices[k] * data.features, data.features, x.data() + k * data.features);
    y[k] = data.labels[indices[k]];
  }
}

double mib(std::int64_t bytes) { return static_cast<double>(bytes) / (1024.0 * 1024.0); }

}  // namespace

int main(int argc, char** argv) {
  zs::MpiEnvironment mpi(&argc, &argv);
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  try {
    // The start-up runs on every rank and is agreed on: a rank that fails (a bad option, a
    // missing file) or differs (other options, data or checkpoint directory) makes every rank
    // refuse, before any training collective could hang (start_up.hpp).
    zs::Communicator start_up(MPI_COMM_WORLD);
    Options options;
    zs::examples::on_every_rank(start_up, [&] { options = parse(argc, argv); });
    if (options.help) {
      if (rank == 0) std::fputs(kHelp, stdout);
      return 0;
    }
    zs::examples::agree_on_options({{"--epochs", options.epochs},
                                    {"--log-every", options.log_every},
                                    {"--save-every", options.save_every},
                                    {"--hidden", options.hidden},
                                    {"--block-repeats", options.block_repeats}},
                                   options.save_dir, options.resume, start_up);
    int world = 1;
    MPI_Comm_size(MPI_COMM_WORLD, &world);
    zs::TrainingConfig config;
    std::optional<std::string> resume_note;
    zs::examples::Dataset train, test;
    zs::examples::on_every_rank(start_up, [&] {
      // Without a file, the example's defaults; then the command line's overrides.
      std::vector<std::string> overrides;
      if (options.config_path.empty())
        overrides = {"optimizer.params.lr=0.002", "scheduler.type=cosine", "scheduler.params.warmup_steps=200"};
      overrides.insert(overrides.end(), options.overrides.begin(), options.overrides.end());
      config = zs::load_training_config(options.config_path, overrides);
      // A resumed run continues the saved run's schedule and global batch (resume_plan.hpp).
      resume_note = zs::examples::resume_into(config, options.save_dir, options.resume, world, options.overrides);
      train = zs::examples::load_fashion_mnist(options.data_dir, "train");
      test = zs::examples::load_fashion_mnist(options.data_dir, "t10k");
      if (test.count == 0)
        throw zs::InvalidArgument("the test set in " + options.data_dir +
                                  " holds no images: accuracy needs at least one; give a --data-dir with test images");
    });
    zs::examples::require_same_on_every_rank(
        {{"training images (--data-dir)", train.count}, {"test images (--data-dir)", test.count}}, start_up);
    const bool resuming = resume_note.has_value();
    zs::Communicator comm(MPI_COMM_WORLD, config.communication);

    zs::DistributedSampler sampler(train.count, config.engine.seed, world, rank, config.micro_batch_size);
    // An epoch is whole optimizer steps: the micro-steps of a last, partial accumulation window
    // are dropped with the sampler's tail (drop_last applied to the global batch of micro-batch
    // x ranks x accumulation samples), so every update averages a full global batch and the
    // epoch ends at a boundary, where checkpoints can be written.
    const int accumulation = config.engine.gradient_accumulation_steps;
    const std::int64_t steps_per_epoch = sampler.steps_per_epoch() / accumulation;
    const std::int64_t micro_steps_per_epoch = steps_per_epoch * accumulation;
    if (steps_per_epoch == 0)
      throw zs::InvalidArgument("the training set's " + std::to_string(train.count) + " images do not fill one step of " +
                                std::to_string(config.micro_batch_size * world * accumulation) +
                                " samples (micro-batch x ranks x accumulation): lower train_micro_batch_size_per_gpu "
                                "or gradient_accumulation_steps");
    const std::int64_t total_steps = steps_per_epoch * options.epochs;
    // The cosine schedule spans the run unless the user set its length (in a file or an
    // override) or the run resumes one (the saved schedule is kept); a warning if it ends first.
    const bool total_given = zs::examples::schedule_length_given(!options.config_path.empty(), resuming, options.overrides);
    const std::optional<std::string> schedule_warning = zs::examples::fit_schedule_to_run(config, total_steps, total_given);
    if (schedule_warning && rank == 0) std::printf("%s\n", schedule_warning->c_str());
    config.validate();
    zs::require_same_on_all_ranks(config, comm);

    zs::nn::Sequential model("mlp");
    model.add<zs::nn::Linear>("fc1", train.features, options.hidden);
    model.add<zs::nn::ReLU>("relu1");
    model.add<zs::nn::Dropout>("drop1", options.dropout);
    model.add<zs::nn::Linear>("fc2", options.hidden, options.hidden / 2);
    constexpr std::size_t kBlockChild = 4;  // the shared block, when there is one
    if (options.block_repeats > 0) {
      auto block = std::make_unique<zs::nn::Sequential>("shared");
      block->add<zs::nn::Linear>("shared.fc", options.hidden / 2, options.hidden / 2);
      block->add<zs::nn::ReLU>("shared.relu");
      model.add_module(std::move(block));
    }
    model.add<zs::nn::ReLU>("relu2");
    model.add<zs::nn::Dropout>("drop2", options.dropout);
    model.add<zs::nn::Linear>("fc3", options.hidden / 2, 10);
    zs::Engine engine(model, config, comm);
    std::optional<zs::examples::BlockRepeats> repeats;
    if (options.block_repeats > 0)
      repeats.emplace(engine, kBlockChild, options.block_repeats, options.layer_drop, config.engine.seed);

    // Resume: the data position is saved as samples into the epoch, so a run resumed at
    // another world size continues from the same place in the (seed, epoch)-determined order.
    int first_epoch = 0;
    std::int64_t first_micro_step = 0;
    const std::int64_t samples_per_micro_step = config.micro_batch_size * world;
    if (resuming) {
      const zs::checkpoint::TrainingState saved = engine.load(options.save_dir);
      const std::string where = options.save_dir + "/latest";
      first_epoch = static_cast<int>(zs::examples::saved_position(saved, where, "epoch", 0, std::int64_t{1} << 30,
                                                                  "an epoch number >= 0"));
      const std::int64_t epoch_samples = micro_steps_per_epoch * samples_per_micro_step;
      const std::int64_t samples_into_epoch = zs::examples::saved_position(
          saved, where, "samples_into_epoch", 0, epoch_samples,
          "samples in [0, " + std::to_string(epoch_samples) + "] (this epoch's), a multiple of " +
              std::to_string(samples_per_micro_step) + " (micro-batch x ranks)",
          samples_per_micro_step);
      first_micro_step = samples_into_epoch / samples_per_micro_step;
      if (rank == 0)
        std::printf("resumed from %s/latest: step %lld, epoch %d, %lld samples into it (saved by a stage-%d run)\n",
                    options.save_dir.c_str(), static_cast<long long>(saved.step), first_epoch + 1,
                    static_cast<long long>(samples_into_epoch), saved.stage);
      if (rank == 0) std::printf("resume: %s\n", resume_note->c_str());
    } else if (options.resume && rank == 0) {
      std::printf("no checkpoint in %s yet: starting from scratch\n", options.save_dir.c_str());
    }
    auto save = [&](int epoch, std::int64_t micro_steps_done) {
      const auto t0 = std::chrono::steady_clock::now();
      const std::string tag = engine.save(options.save_dir, "",
                                          {{"epoch", epoch}, {"samples_into_epoch", micro_steps_done * samples_per_micro_step}});
      if (rank == 0)
        std::printf("checkpoint %s/%s %s in %.2f s\n", options.save_dir.c_str(), tag.c_str(),
                    config.engine.checkpoint.async ? "started" : "written",
                    std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    };

    // MFU: 6 x parameters FLOPs per sample (the MLP is its matrix products) over the job's peak.
    const zs::examples::PeakFlops peak = zs::examples::job_peak_flops(comm, options.peak_tflops);
    const double flops_per_step = zs::examples::mlp_flops_per_sample(engine.parameter_count()) *
                                  static_cast<double>(config.micro_batch_size * world * accumulation);
    zs::examples::EtaEstimate eta;
    std::int64_t window_first_step = engine.optimizer_steps();
    std::int64_t trained_peak = 0;  // the ledger's high-water mark before the first evaluation

    std::int64_t last_saved_step = -1;
    std::ofstream metrics;
    if (rank == 0) {
      metrics.open(options.metrics_path, first_epoch > 0 || first_micro_step > 0 ? std::ios::app : std::ios::trunc);
      if (!metrics) throw zs::InvalidArgument("cannot write metrics file '" + options.metrics_path + "'");
      std::printf("Fashion-MNIST: %lld train / %lld test images, %d ranks, ZeRO stage %d, %zu units, %lld parameters\n",
                  static_cast<long long>(train.count), static_cast<long long>(test.count), world, engine.stage(),
                  engine.unit_count(), static_cast<long long>(engine.parameter_count()));
      std::printf("%s\n", zs::examples::precision_summary(config.engine).c_str());
      std::printf("%s", zs::examples::sharding_summary(engine).c_str());
      std::printf("micro-batch %lld x %d ranks x %d accumulation = %lld samples per step, %lld steps\n",
                  static_cast<long long>(config.micro_batch_size), world, config.engine.gradient_accumulation_steps,
                  static_cast<long long>(config.micro_batch_size * world * config.engine.gradient_accumulation_steps),
                  static_cast<long long>(total_steps));
      std::printf("MFU against a peak of %s; %.3g model FLOPs per step (6 x parameters x samples)\n", peak.how.c_str(),
                  flops_per_step);
      if (repeats)
        std::printf("shared block after fc2 (unit %zu) applied %d times, layer drop %.2f\n",
                    engine.unit_of_child(kBlockChild), options.block_repeats, options.layer_drop);
      std::fflush(stdout);
    }

    zs::nn::SoftmaxCrossEntropy loss;
    zs::Tensor x;
    std::vector<std::int32_t> y;
    const auto start = std::chrono::steady_clock::now();
    auto window_start = start;
    double window_loss = 0;
    std::int64_t window_steps = 0, window_samples = 0;
    double accuracy = 0;
    for (int epoch = first_epoch; epoch < options.epochs; ++epoch) {
      sampler.set_epoch(epoch);
      for (std::int64_t s = epoch == first_epoch ? first_micro_step : 0; s < micro_steps_per_epoch; ++s) {
        fill_batch(train, sampler.batch(s), x, y);
        const zs::Tensor& logits =
            repeats ? engine.forward(x, repeats->program(engine.micro_steps(), true)) : engine.forward(x);
        window_loss += loss.forward(logits, y);
        engine.backward(loss.gradient());
        const double lr = engine.learning_rate();
        window_samples += config.micro_batch_size * world;
        ++window_steps;
        const bool stepped = engine.step();
        if (stepped && engine.last_step_skipped() && rank == 0)
          std::printf("step skipped after optimizer step %lld: %s\n", static_cast<long long>(engine.optimizer_steps()),
                      zs::examples::skipped_step_reason(engine).c_str());
        if (stepped && options.save_every > 0 && engine.optimizer_steps() % options.save_every == 0) {
          save(epoch, s + 1);
          last_saved_step = engine.optimizer_steps();
        }
        if (!stepped || engine.optimizer_steps() % options.log_every != 0) continue;
        double mean_loss = window_loss / window_steps;
        ZS_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &mean_loss, 1, MPI_DOUBLE, MPI_SUM, comm.handle()));
        mean_loss /= world;
        const std::int64_t state_bytes = engine.model_state_bytes().total();
        const auto [low, high] = zs::range_across_ranks({&state_bytes, 1}, comm).front();
        const auto now = std::chrono::steady_clock::now();
        const double seconds = std::chrono::duration<double>(now - window_start).count();
        const std::int64_t window_optimizer_steps = engine.optimizer_steps() - window_first_step;
        eta.add_window(seconds, window_optimizer_steps);
        const double eta_seconds = eta.eta_seconds(total_steps - engine.optimizer_steps());
        const double mfu = flops_per_step * static_cast<double>(window_optimizer_steps) / seconds / peak.flops_per_second;
        if (rank == 0) {
          std::printf("epoch %d step %lld/%lld loss %.4f lr %.2e grad-norm %.3f%s %.0f samples/s MFU %.2f%% ETA %s "
                      "model-state/rank %.2f-%.2f MiB\n",
                      epoch + 1, static_cast<long long>(engine.optimizer_steps()), static_cast<long long>(total_steps),
                      mean_loss, lr, engine.gradient_norm(), zs::examples::loss_scale_text(engine).c_str(),
                      window_samples / seconds, 100 * mfu, zs::examples::format_duration(eta_seconds).c_str(), mib(low),
                      mib(high));
          metrics << "{\"kind\":\"train\",\"epoch\":" << epoch + 1 << ",\"step\":" << engine.optimizer_steps()
                  << ",\"loss\":" << mean_loss << ",\"lr\":" << lr << ",\"grad_norm\":" << json_number(engine.gradient_norm())
                  << ",\"skipped_steps\":" << engine.skipped_steps() << ",\"loss_scale\":" << engine.loss_scale()
                  << ",\"samples_per_second\":" << window_samples / seconds << ",\"model_state_bytes_max\":" << high
                  << ",\"memory_peak_bytes\":" << engine.memory().high_water_total() << ",\"mfu\":" << json_number(mfu)
                  << ",\"eta_seconds\":" << json_number(eta_seconds) << "}\n";
          std::fflush(stdout);
        }
        window_start = now;
        window_first_step = engine.optimizer_steps();
        window_loss = 0;
        window_steps = window_samples = 0;
      }
      // Test accuracy: rank r scores a contiguous 1/n of the test set, in batches; every rank
      // runs the same number of evaluate() calls (stage 3 gathers parameters inside it), an
      // empty batch where its part has run out. Counts are summed over ranks.
      if (epoch == first_epoch) trained_peak = engine.memory().high_water_total();
      std::int64_t correct_and_total[2] = {0, 0};
      double test_loss = 0;
      constexpr std::int64_t kEvalBatch = 1000;
      const std::int64_t part = (test.count + world - 1) / world;
      const std::int64_t part_begin = std::min(test.count, rank * part), part_end = std::min(test.count, (rank + 1) * part);
      for (std::int64_t first = 0; first < part; first += kEvalBatch) {
        std::vector<std::int64_t> indices;
        for (std::int64_t i = part_begin + first; i < std::min(part_end, part_begin + first + kEvalBatch); ++i)
          indices.push_back(i);
        fill_batch(test, indices, x, y);
        const zs::Tensor& logits = repeats ? engine.evaluate(x, repeats->program(0, false)) : engine.evaluate(x);
        if (indices.empty()) continue;
        test_loss += loss.forward(logits, y) * static_cast<double>(indices.size());
        correct_and_total[0] += loss.correct();
        correct_and_total[1] += static_cast<std::int64_t>(indices.size());
      }
      ZS_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, correct_and_total, 2, MPI_INT64_T, MPI_SUM, comm.handle()));
      ZS_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &test_loss, 1, MPI_DOUBLE, MPI_SUM, comm.handle()));
      accuracy = static_cast<double>(correct_and_total[0]) / correct_and_total[1];
      const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      if (rank == 0) {
        std::printf("epoch %d test accuracy %.2f%% test loss %.4f elapsed %.1f s\n", epoch + 1, 100 * accuracy,
                    test_loss / correct_and_total[1], elapsed);
        metrics << "{\"kind\":\"test\",\"epoch\":" << epoch + 1 << ",\"step\":" << engine.optimizer_steps()
                << ",\"accuracy\":" << accuracy
                << ",\"loss\":" << test_loss / correct_and_total[1] << ",\"elapsed_seconds\":" << elapsed << "}\n";
        std::fflush(stdout);
      }
    }

    // The final checkpoint, unless the last periodic save holds this very step already (it
    // resumes to the same place: the end of the last epoch).
    if (!options.save_dir.empty()) {
      if (engine.optimizer_steps() != last_saved_step) save(options.epochs, 0);
      engine.wait_for_checkpoint();
    }
    // The timeline (--profiler.enabled=true): written when profiler.steps ended, or now.
    const std::string trace = engine.finish_profiler();
    if (rank == 0 && !trace.empty())
      std::printf("profiler: Chrome trace in %s (open it in https://ui.perfetto.dev or chrome://tracing)\n", trace.c_str());

    // Memory report: this rank's ledger, and model-state bytes of every rank next to the formula.
    const std::string model_states = zs::examples::model_state_report(engine, comm);
    if (rank == 0) {
      if (repeats)
        std::printf("\nunit order: %lld forwards left the order recorded before them\n",
                    static_cast<long long>(engine.unit_order_changes()));
      std::printf("\nmemory report, rank 0 (bytes held now and at peak):\n%s", engine.memory().report().c_str());
      std::fputs(zs::examples::planned_against_measured(engine, trained_peak).c_str(), stdout);
      std::fputs(model_states.c_str(), stdout);
      std::printf("final test accuracy %.2f%%\n", 100 * accuracy);
    }
    return 0;
  } catch (const std::exception& e) {
    return zs::examples::exit_on_error("zs_fashion_mnist", e);
  }
}
