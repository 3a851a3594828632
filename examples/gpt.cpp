// A byte-level GPT trained with ZeRO under mpirun, on the text of Debian's `fortunes` package.
//
//   zs-mpirun -np 4 build/examples/zs_gpt --stage 3
//
// Run with --help for every option. The model is built from library modules (nn/transformer.hpp):
// token + position embedding -> n_layer TransformerBlocks -> final LayerNorm -> LM head tied
// to the token table; units are given as module lists (one per block, the embedding, the
// head). Progress (step, loss, validation loss, lr, gradient norm, tokens/s, model-state memory
// per rank) on rank 0; metrics as JSON lines; at the end the validation loss next to the
// unigram and bigram baselines, text sampled from a prompt, and the memory report.
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <optional>
#include <string>
#include <vector>

#include "number_text.hpp"
#include "option_values.hpp"
#include "model_state_report.hpp"
#include "progress_estimates.hpp"
#include "resume_plan.hpp"
#include "start_up.hpp"
#include "zeroshard/checkpoint/saved_values.hpp"
#include "text_corpus.hpp"
#include "zeroshard/comm/agreement.hpp"
#include "zeroshard/comm/mpi_check.hpp"
#include "zeroshard/comm/mpi_environment.hpp"
#include "zeroshard/nn/transformer.hpp"
#include "zeroshard/runtime/config.hpp"
#include "zeroshard/runtime/engine.hpp"

namespace {

using zs::examples::json_number;

constexpr std::int64_t kVocab = 256;      // bytes
constexpr std::int32_t kIgnore = -100;    // targets past the text's end (padding)
constexpr double kBigramK = 0.1;          // the bigram baseline's add-k smoothing


struct Options {
  std::string config_path;
  std::vector<std::string> overrides;
  std::string data_dir = "/usr/share/games/fortunes";
  std::string metrics_path = "gpt_metrics.jsonl";
  double validation_fraction = 0.05;
  std::int64_t n_layer = 3, n_head = 4, n_embd = 96, block_size = 64;
  float dropout = 0.0f;
  std::int64_t steps = 1500;
  double epochs = 0;
  std::int64_t eval_every = 250, eval_batches = 4, log_every = 50;
  std::string save_dir;
  std::int64_t save_every = 0;
  bool resume = false;
  std::int64_t sample_bytes = 300;
  std::string prompt = "Q: What";
  double temperature = 0.8;
  double peak_tflops = 0;
  bool help = false;
};

const char* kHelp = R"(zs_gpt: a byte-level GPT (GPT-2 blocks: pre-LayerNorm, causal self-attention, GELU MLP;
LM head tied to the token embedding) trained with ZeRO on the text of Debian's fortunes package.

Model:
  --n-layer N          transformer blocks (default 3)
  --n-head N           attention heads (default 4)
  --n-embd N           embedding width, a multiple of --n-head (default 96)
  --block-size N       context length in bytes (default 64)
  --dropout P          dropout on embeddings, attention and residuals (default 0)
Training:
  --config FILE        JSON training configuration (keys: docs/config.md)
  --KEY=VALUE          override any configuration key, e.g. --optimizer.params.lr=0.001,
                       --activation_checkpointing.units=all, --gradient_clipping=0.5
  --stage N            shorthand for --zero_optimization.stage=N (0-3)
  --batch N            micro-batch per rank, in windows of block-size bytes (default 8;
                       --train_micro_batch_size_per_gpu=N)
  --steps N            optimizer steps (default 1500)
  --epochs E           instead of --steps: E times the training split's bytes in targets
                       (windows are drawn at random, so an epoch is a budget, not a pass)
  --seed N             parameter initialisation, dropout and data order (--seed=N)
  --log-every N        progress line every N steps (default 50), with tokens/s, MFU and ETA
  --peak-tflops X      the job's peak TFLOP/s for MFU (default: detected from cores, clock and
                       the build's vector ISA; docs/performance.md, "ETA and MFU")
  --eval-every N       validation loss every N steps, on --eval-batches micro-batches per rank of
                       windows spread evenly over the validation split (default 250; 0: only the
                       full pass at the end)
  --eval-batches N     (default 4)
Data:
  --data-dir DIR       text files, every regular file except *.dat, *.u8 and symlinks, in sorted
                       order (default /usr/share/games/fortunes)
  --val-fraction F     validation split: the last F of every file, from a line start (default 0.05)
Checkpoints:
  --save-dir DIR       checkpoint directory (DIR/step_<N>/, DIR/latest); a final checkpoint is
                       written there at the end
  --save-every N       also checkpoint every N steps (needs --save-dir)
  --resume             continue from DIR/latest if there is one, at any world size or stage: the
                       saved LR schedule and global batch are kept, and training continues with
                       the saved step's windows
Output:
  --metrics FILE       JSON-lines metrics written by rank 0 (default gpt_metrics.jsonl)
  --sample-bytes N     bytes generated from --prompt at the end (default 300; 0: none)
  --prompt TEXT        (default "Q: What")
  --temperature T      sampling temperature; 0: greedy (default 0.8; draws from the seed)
  --help               this text

Without --config the example uses adamw (lr 5e-3, betas 0.9/0.99, weight decay 0.1), a cosine
schedule over the run with 100 warmup steps down to 5e-4, and gradient clipping at 1.0;
--KEY=VALUE overrides apply on top either way.
)";

Options parse(int argc, char** argv) {
  Options o;
  for (zs::examples::CommandLine args(argc, argv); args.next();) {
    const std::string name = args.name();
    auto value = [&] { return args.value(); };
    if (name == "--help") o.help = true;
    else if (name == "--config") o.config_path = value();
    else if (name == "--stage") o.overrides.push_back("zero_optimization.stage=" + value());
    else if (name == "--batch") o.overrides.push_back("train_micro_batch_size_per_gpu=" + value());
    else if (name == "--seed") o.overrides.push_back("seed=" + value());
    else if (name == "--n-layer") o.n_layer = zs::examples::whole_number<decltype(o.n_layer)>(name, value());
    else if (name == "--n-head") o.n_head = zs::examples::whole_number<decltype(o.n_head)>(name, value());
    else if (name == "--n-embd") o.n_embd = zs::examples::whole_number<decltype(o.n_embd)>(name, value());
    else if (name == "--block-size") o.block_size = zs::examples::whole_number<decltype(o.block_size)>(name, value());
    else if (name == "--dropout") o.dropout = static_cast<decltype(o.dropout)>(zs::examples::finite_number(name, value()));
    else if (name == "--steps") o.steps = zs::examples::whole_number<decltype(o.steps)>(name, value());
    else if (name == "--epochs") o.epochs = static_cast<decltype(o.epochs)>(zs::examples::finite_number(name, value()));
    else if (name == "--eval-every") o.eval_every = zs::examples::whole_number<decltype(o.eval_every)>(name, value());
    else if (name == "--eval-batches") o.eval_batches = zs::examples::whole_number<decltype(o.eval_batches)>(name, value());
    else if (name == "--log-every") o.log_every = zs::examples::whole_number<decltype(o.log_every)>(name, value());
    else if (name == "--data-dir") o.data_dir = value();
    else if (name == "--val-fraction") o.validation_fraction = static_cast<decltype(o.validation_fraction)>(zs::examples::finite_number(name, value()));
    else if (name == "--metrics") o.metrics_path = value();
    else if (name == "--save-dir") o.save_dir = value();
    else if (name == "--save-every") o.save_every = zs::examples::whole_number<decltype(o.save_every)>(name, value());
    else if (name == "--resume") o.resume = true;
    else if (name == "--sample-bytes") o.sample_bytes = zs::examples::whole_number<decltype(o.sample_bytes)>(name, value());
    else if (name == "--prompt") o.prompt = value();
    else if (name == "--peak-tflops") o.peak_tflops = zs::examples::finite_number(name, value());
    else if (name == "--temperature") o.temperature = static_cast<decltype(o.temperature)>(zs::examples::finite_number(name, value()));
    else o.overrides.push_back(args.configuration_override());
  }
  if (o.n_layer < 1 || o.n_head < 1 || o.n_embd < 1 || o.block_size < 1)
    throw zs::InvalidArgument("--n-layer, --n-head, --n-embd and --block-size must be >= 1");
  if (o.steps < 1) throw zs::InvalidArgument("--steps must be >= 1");
  if (o.epochs < 0) throw zs::InvalidArgument("--epochs must be > 0");
  if (o.peak_tflops < 0) throw zs::InvalidArgument("--peak-tflops must be > 0 (or 0: detect)");
  if (o.eval_every < 0 || o.eval_batches < 1 || o.log_every < 1)
    throw zs::InvalidArgument("--eval-every must be >= 0, --eval-batches and --log-every >= 1");
  if (o.save_every < 0) throw zs::InvalidArgument("--save-every must be >= 0");
  if ((o.save_every > 0 || o.resume) && o.save_dir.empty())
    throw zs::InvalidArgument("--save-every and --resume need --save-dir DIR");
  if (o.sample_bytes < 0) throw zs::InvalidArgument("--sample-bytes must be >= 0");
  if (!(o.temperature >= 0)) throw zs::InvalidArgument("--temperature must be >= 0");
  if (o.sample_bytes > 0 && o.prompt.empty()) throw zs::InvalidArgument("--prompt must not be empty");
  return o;
}

double mib(std::int64_t bytes) { return static_cast<double>(bytes) / (1024.0 * 1024.0); }

// The model: modules owned here, units handed to the engine as lists.
struct Gpt {
  Gpt(const Options& o)
      : embed("embed", kVocab, o.block_size, o.n_embd, o.dropout), ln_f("ln_f", o.n_embd),
        lm_head("lm_head", embed.wte.weight) {
    for (std::int64_t l = 0; l < o.n_layer; ++l) {
      blocks.push_back(std::make_unique<zs::nn::TransformerBlock>("h" + std::to_string(l), o.n_embd, o.n_head, o.dropout));
      // GPT-2 / nanoGPT: the projections into the residual stream start smaller with depth.
      const float std = zs::nn::kInitStd / std::sqrt(2.0f * static_cast<float>(o.n_layer));
      blocks.back()->attn.c_proj.init_normal(std);
      blocks.back()->mlp_proj.init_normal(std);
    }
  }
  // Unit 0 the embedding, units 1..n_layer one block each, the last the final norm and the head
  // (which borrows the token table from unit 0: one parameter, gradients of both uses summed).
  std::vector<std::vector<zs::nn::Module*>> units() {
    std::vector<std::vector<zs::nn::Module*>> u{{&embed}};
    for (auto& block : blocks) u.push_back({block.get()});
    u.push_back({&ln_f, &lm_head});
    return u;
  }

  zs::nn::TokenPositionEmbedding embed;
  std::vector<std::unique_ptr<zs::nn::TransformerBlock>> blocks;
  zs::nn::LayerNorm ln_f;
  zs::nn::TiedLinear lm_head;
};

}  // namespace

int main(int argc, char** argv) {
  zs::MpiEnvironment mpi(&argc, &argv);
  int rank = 0, world = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &world);
  try {
    // The start-up runs on every rank and is agreed on: a rank that fails or differs makes
    // every rank refuse, before any training collective could hang (start_up.hpp).
    zs::Communicator start_up(MPI_COMM_WORLD);
    Options options;
    zs::examples::on_every_rank(start_up, [&] { options = parse(argc, argv); });
    if (options.help) {
      if (rank == 0) std::fputs(kHelp, stdout);
      return 0;
    }
    std::int64_t epochs_bits = 0;  // compared exactly, as the double it is
    static_assert(sizeof epochs_bits == sizeof(double));
    const double epochs = options.epochs;
    std::memcpy(&epochs_bits, &epochs, sizeof epochs_bits);
    zs::examples::agree_on_options({{"--steps", options.steps},
                                    {"--epochs", epochs_bits, true},
                                    {"--log-every", options.log_every},
                                    {"--eval-every", options.eval_every},
                                    {"--eval-batches", options.eval_batches},
                                    {"--save-every", options.save_every},
                                    {"--n-layer", options.n_layer},
                                    {"--block-size", options.block_size},
                                    {"--sample-bytes", options.sample_bytes}},
                                   options.save_dir, options.resume, start_up);
    zs::TrainingConfig config;
    std::optional<std::string> resume_note;
    std::optional<zs::examples::TextCorpus> loaded;
    zs::examples::on_every_rank(start_up, [&] {
      std::vector<std::string> overrides;
      if (options.config_path.empty())
        overrides = {"optimizer.params.lr=0.005",         "optimizer.params.betas=0.9,0.99",
                     "optimizer.params.weight_decay=0.1", "scheduler.type=cosine",
                     "scheduler.params.warmup_steps=100", "scheduler.params.min_lr=0.0005",
                     "gradient_clipping=1.0",             "train_micro_batch_size_per_gpu=8"};
      overrides.insert(overrides.end(), options.overrides.begin(), options.overrides.end());
      config = zs::load_training_config(options.config_path, overrides);
      // A resumed run continues the saved run's schedule and global batch (resume_plan.hpp).
      resume_note = zs::examples::resume_into(config, options.save_dir, options.resume, world, options.overrides);
      loaded = zs::examples::load_text_corpus(options.data_dir, options.validation_fraction);
    });
    const zs::examples::TextCorpus& corpus = *loaded;
    zs::examples::require_same_on_every_rank(
        {{"training bytes (--data-dir)", static_cast<std::int64_t>(corpus.train.size())},
         {"validation bytes (--data-dir, --val-fraction)", static_cast<std::int64_t>(corpus.validation.size())}},
        start_up);
    const bool resuming = resume_note.has_value();
    zs::Communicator comm(MPI_COMM_WORLD, config.communication);

    const std::int64_t block = options.block_size;
    const std::int64_t micro = config.micro_batch_size;
    const int accumulation = config.engine.gradient_accumulation_steps;
    const std::int64_t global_batch = micro * world * accumulation;  // windows per optimizer step
    const std::int64_t total_steps =
        options.epochs > 0 ? std::max<std::int64_t>(1, static_cast<std::int64_t>(std::ceil(
                                                           options.epochs * static_cast<double>(corpus.train.size()) /
                                                           static_cast<double>(global_batch * block))))
                           : options.steps;
    // The cosine schedule spans the run unless the user set its length (in a file or an
    // override) or the run resumes one (the saved schedule is kept); a warning if it ends first.
    const bool total_given = zs::examples::schedule_length_given(!options.config_path.empty(), resuming, options.overrides);
    const std::optional<std::string> schedule_warning = zs::examples::fit_schedule_to_run(config, total_steps, total_given);
    if (schedule_warning && rank == 0) std::printf("%s\n", schedule_warning->c_str());
    config.validate();
    zs::require_same_on_all_ranks(config, comm);

    Gpt model(options);
    zs::Engine engine(model.units(), config, comm);
    const zs::examples::WindowSampler sampler(static_cast<std::int64_t>(corpus.train.size()), block, config.engine.seed);

    // Resume: the data position is the step (the windows of step s depend on (seed, s) only).
    std::int64_t first_step = 0;
    if (resuming) {
      const zs::checkpoint::TrainingState saved = engine.load(options.save_dir);
      first_step = zs::examples::saved_position(saved, options.save_dir + "/latest", "data_step", 0,
                                                zs::checkpoint::kMaxSavedStep, "a step in [0, 2^53]");
      if (rank == 0) {
        std::printf("resumed from %s/latest: step %lld (saved by a stage-%d run)\nresume: %s\n",
                    options.save_dir.c_str(), static_cast<long long>(first_step), saved.stage, resume_note->c_str());
      }
    } else if (options.resume && rank == 0) {
      std::printf("no checkpoint in %s yet: starting from scratch\n", options.save_dir.c_str());
    }
    std::int64_t last_saved_step = -1;
    auto save = [&](std::int64_t steps_done) {
      const auto t0 = std::chrono::steady_clock::now();
      const std::string tag = engine.save(options.save_dir, "", {{"data_step", steps_done}});
      last_saved_step = steps_done;
      if (rank == 0)
        std::printf("checkpoint %s/%s %s in %.2f s\n", options.save_dir.c_str(), tag.c_str(),
                    config.engine.checkpoint.async ? "started" : "written",
                    std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    };

    // MFU: PaLM's 6N + 12 L H Q T FLOPs per token (N without the position table) over the job's peak.
    const zs::examples::PeakFlops peak = zs::examples::job_peak_flops(comm, options.peak_tflops);
    const double flops_per_step =
        zs::examples::gpt_flops_per_token(engine.parameter_count() - block * options.n_embd,
                                          static_cast<int>(options.n_layer), options.n_embd, block) *
        static_cast<double>(global_batch * block);
    zs::examples::EtaEstimate eta;

    std::ofstream metrics;
    double unigram = 0, bigram = 0;
    if (rank == 0) {
      metrics.open(options.metrics_path, first_step > 0 ? std::ios::app : std::ios::trunc);
      if (!metrics) throw zs::InvalidArgument("cannot write metrics file '" + options.metrics_path + "'");
      unigram = zs::examples::unigram_cross_entropy(corpus.train, corpus.validation);
      bigram = zs::examples::bigram_cross_entropy(corpus.train, corpus.validation, kBigramK);
      std::printf("corpus: %zu files in %s, %zu training + %zu validation bytes (the last %.0f%% of every file)\n",
                  corpus.files.size(), options.data_dir.c_str(), corpus.train.size(), corpus.validation.size(),
                  100 * options.validation_fraction);
      std::printf("baselines on validation (nats/byte): unigram %.4f, bigram %.4f (add-%g)\n", unigram, bigram,
                  kBigramK);
      std::printf("GPT: %lld layers, %lld heads, n_embd %lld, block %lld, dropout %.2f: %lld parameters, %zu units; "
                  "%d ranks, ZeRO stage %d\n",
                  static_cast<long long>(options.n_layer), static_cast<long long>(options.n_head),
                  static_cast<long long>(options.n_embd), static_cast<long long>(block), options.dropout,
                  static_cast<long long>(engine.parameter_count()), engine.unit_count(), world, engine.stage());
      std::printf("%s\n", zs::examples::precision_summary(config.engine).c_str());
      std::printf("%s", zs::examples::sharding_summary(engine).c_str());
      std::printf("micro-batch %lld x %d ranks x %d accumulation = %lld windows (%lld tokens) per step, %lld steps\n",
                  static_cast<long long>(micro), world, accumulation, static_cast<long long>(global_batch),
                  static_cast<long long>(global_batch * block), static_cast<long long>(total_steps));
      std::printf("MFU against a peak of %s; %.3g model FLOPs per step (6N + 12 L n_embd T per token)\n",
                  peak.how.c_str(), flops_per_step);
      std::fflush(stdout);
    }

    zs::nn::SequenceCrossEntropy loss(kIgnore);
    zs::Tensor x;
    std::vector<std::int32_t> y;

    // Validation loss over `positions` (windows of the validation split): rank r takes a
    // contiguous part, in micro-batches; every rank makes the same evaluate() calls (stage 3
    // gathers inside them), padding windows where its part runs out. Summed over ranks.
    auto validate = [&](const std::vector<std::int64_t>& positions) {
      const auto count = static_cast<std::int64_t>(positions.size());
      const std::int64_t part = (count + world - 1) / world;
      double sum_and_count[2] = {0, 0};
      for (std::int64_t first = 0; first < part; first += micro) {
        std::vector<std::int64_t> batch;
        for (std::int64_t i = first; i < std::min(part, first + micro); ++i) {
          const std::int64_t j = rank * part + i;
          batch.push_back(j < count ? positions[static_cast<std::size_t>(j)] : -1);
        }
        zs::examples::fill_windows(corpus.validation, batch, block, kIgnore, x, y);
        loss.forward(engine.evaluate(x), y);
        sum_and_count[0] += loss.sum();
        sum_and_count[1] += static_cast<double>(loss.count());
      }
      ZS_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, sum_and_count, 2, MPI_DOUBLE, MPI_SUM, comm.handle()));
      return sum_and_count[0] / sum_and_count[1];
    };
    const auto quick_positions = zs::examples::spread_positions(static_cast<std::int64_t>(corpus.validation.size()),
                                                                block, options.eval_batches * micro * world);

    // The activation high-water mark of training alone, read before the first validation pass
    // (evaluate() fills every module's caches, checkpointed or not; every step has the same
    // shapes, so the first step reaches the training peak).
    std::int64_t training_activation_peak = -1, training_peak = -1;
    auto note_training_peak = [&] {
      if (training_activation_peak < 0) {
        training_activation_peak = engine.memory().high_water(zs::MemoryCategory::activations);
        training_peak = engine.memory().high_water_total();
      }
    };
    const auto start = std::chrono::steady_clock::now();
    auto window_start = start;
    double window_loss = 0, validation_loss = std::nan("");
    std::int64_t window_micro_steps = 0, window_tokens = 0, window_first_step = first_step;
    for (std::int64_t step = first_step; step < total_steps; ++step) {
      const double lr = engine.learning_rate();
      for (int a = 0; a < accumulation; ++a) {
        zs::examples::fill_windows(corpus.train, sampler.positions(step, a, world, rank, micro), block, kIgnore, x, y);
        window_loss += loss.forward(engine.forward(x), y);
        engine.backward(loss.gradient());
        ++window_micro_steps;
        engine.step();
      }
      window_tokens += global_batch * block;
      if (engine.last_step_skipped() && rank == 0)
        std::printf("step %lld skipped: %s\n", static_cast<long long>(step + 1),
                    zs::examples::skipped_step_reason(engine).c_str());
      const std::int64_t done = step + 1;
      if (options.save_every > 0 && done % options.save_every == 0 && done < total_steps) save(done);
      const bool evaluate_now = options.eval_every > 0 && done % options.eval_every == 0 && done < total_steps;
      auto evaluation_started = std::chrono::steady_clock::now();  // ETA and MFU leave validation out
      if (evaluate_now) {
        note_training_peak();
        validation_loss = validate(quick_positions);
      }
      if (done % options.log_every != 0 && !evaluate_now) continue;
      double mean_loss = window_loss / static_cast<double>(window_micro_steps);
      ZS_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &mean_loss, 1, MPI_DOUBLE, MPI_SUM, comm.handle()));
      mean_loss /= world;
      const std::int64_t state_bytes = engine.model_state_bytes().total();
      const auto [low, high] = zs::range_across_ranks({&state_bytes, 1}, comm).front();
      const auto now = std::chrono::steady_clock::now();
      const double seconds = std::chrono::duration<double>(now - window_start).count();
      const double elapsed = std::chrono::duration<double>(now - start).count();
      const double train_seconds_in_window =
          std::chrono::duration<double>((evaluate_now ? evaluation_started : now) - window_start).count();
      eta.add_window(train_seconds_in_window, done - window_first_step);
      const double eta_seconds = eta.eta_seconds(total_steps - done);
      const double mfu = flops_per_step * static_cast<double>(done - window_first_step) / train_seconds_in_window /
                         peak.flops_per_second;
      if (rank == 0) {
        char val_text[32] = "-";
        if (evaluate_now) std::snprintf(val_text, sizeof val_text, "%.4f", validation_loss);
        std::printf("step %lld/%lld loss %.4f val %s lr %.2e grad-norm %.3f%s %.0f tokens/s MFU %.2f%% ETA %s "
                    "model-state/rank %.2f-%.2f MiB %.0f s\n",
                    static_cast<long long>(done), static_cast<long long>(total_steps), mean_loss, val_text, lr,
                    engine.gradient_norm(), zs::examples::loss_scale_text(engine).c_str(),
                    static_cast<double>(window_tokens) / seconds, 100 * mfu,
                    zs::examples::format_duration(eta_seconds).c_str(), mib(low), mib(high), elapsed);
        metrics << "{\"kind\":\"train\",\"step\":" << done << ",\"loss\":" << json_number(mean_loss)
                << ",\"lr\":" << json_number(lr) << ",\"grad_norm\":" << json_number(engine.gradient_norm())
                << ",\"skipped_steps\":" << engine.skipped_steps() << ",\"loss_scale\":" << engine.loss_scale()
                << ",\"tokens_per_second\":" << json_number(static_cast<double>(window_tokens) / seconds)
                << ",\"model_state_bytes_max\":" << high << ",\"memory_peak_bytes\":" << engine.memory().high_water_total()
                << ",\"mfu\":" << json_number(mfu) << ",\"eta_seconds\":" << json_number(eta_seconds)
                << ",\"elapsed_seconds\":" << json_number(elapsed) << "}\n";
        if (evaluate_now)
          metrics << "{\"kind\":\"validation\",\"step\":" << done << ",\"loss\":" << json_number(validation_loss)
                  << ",\"windows\":" << quick_positions.size() << "}\n";
        metrics.flush();
        std::fflush(stdout);
      }
      window_start = std::chrono::steady_clock::now();  // the validation pass is not training time
      window_first_step = done;
      window_loss = 0;
      window_micro_steps = window_tokens = 0;
    }
    const double train_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    note_training_peak();

    if (!options.save_dir.empty()) {
      if (last_saved_step != total_steps && first_step < total_steps) save(total_steps);
      engine.wait_for_checkpoint();
    }
    // The timeline (--profiler.enabled=true): written when profiler.steps ended, or now.
    const std::string trace = engine.finish_profiler();
    if (rank == 0 && !trace.empty())
      std::printf("profiler: Chrome trace in %s (open it in https://ui.perfetto.dev or chrome://tracing)\n", trace.c_str());

    // The final validation loss: every validation byte after the first is a target once.
    const auto eval_start = std::chrono::steady_clock::now();
    validation_loss =
        validate(zs::examples::tiling_positions(static_cast<std::int64_t>(corpus.validation.size()), block));
    const double eval_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - eval_start).count();
    if (rank == 0) {
      std::printf("\nfinal validation loss %.4f nats/byte (%.3f bits/byte) over the whole validation split, in %.1f s\n",
                  validation_loss, validation_loss / std::log(2.0), eval_seconds);
      std::printf("baselines: unigram %.4f, bigram %.4f nats/byte\n", unigram, bigram);
      std::printf("below unigram: %s, below bigram: %s\n", validation_loss < unigram ? "yes" : "no",
                  validation_loss < bigram ? "yes" : "no");
      metrics << "{\"kind\":\"final\",\"step\":" << total_steps << ",\"validation_loss\":" << json_number(validation_loss)
              << ",\"unigram\":" << json_number(unigram) << ",\"bigram\":" << json_number(bigram)
              << ",\"train_seconds\":" << json_number(train_seconds) << "}\n";
      metrics.flush();
      std::fflush(stdout);
    }

    // Sampling: every rank runs the same evaluate() calls (stage 3 gathers collectively); rank
    // 0 draws each byte (greedy, or at --temperature from the seed) and broadcasts it, so every
    // rank feeds the same context.
    if (options.sample_bytes > 0) {
      std::string text = options.prompt;
      std::mt19937_64 random(config.engine.seed ^ 0x5A4D504C45ull);
      for (std::int64_t n = 0; n < options.sample_bytes; ++n) {
        const auto length = std::min<std::int64_t>(block, static_cast<std::int64_t>(text.size()));
        x.resize({1, length});
        for (std::int64_t t = 0; t < length; ++t)
          x.data()[t] = static_cast<unsigned char>(text[text.size() - static_cast<std::size_t>(length - t)]);
        const zs::Tensor& logits = engine.evaluate(x);
        const float* last = logits.data() + (length - 1) * kVocab;
        int next = 0;
        if (rank == 0) {
          if (options.temperature == 0) {
            next = static_cast<int>(std::max_element(last, last + kVocab) - last);
          } else {
            const float top = *std::max_element(last, last + kVocab);
            std::vector<double> weights(kVocab);
            for (std::int64_t v = 0; v < kVocab; ++v) weights[v] = std::exp((last[v] - top) / options.temperature);
            next = std::discrete_distribution<int>(weights.begin(), weights.end())(random);
          }
        }
        ZS_MPI_CHECK(MPI_Bcast(&next, 1, MPI_INT, 0, comm.handle()));
        text.push_back(static_cast<char>(next));
      }
      if (rank == 0) {
        std::printf("\nsample (%s, %lld bytes after the prompt):\n%s\n",
                    options.temperature == 0 ? "greedy" : ("temperature " + json_number(options.temperature)).c_str(),
                    static_cast<long long>(options.sample_bytes), text.c_str());
        std::fflush(stdout);
      }
    }

    // Memory report: this rank's ledger, and model-state bytes of every rank next to the formula.
    const std::string model_states = zs::examples::model_state_report(engine, comm);
    if (rank == 0) {
      std::printf("\nmemory report, rank 0 (bytes held now and at peak):\n%s", engine.memory().report().c_str());
      std::printf("activation peak in training, rank 0: %.2f MiB (activation checkpointing: %s; with "
                  "validation and sampling: %.2f MiB)\n",
                  mib(training_activation_peak),
                  config.engine.activation_checkpointing      ? "all units"
                  : config.engine.checkpointed_units.empty() ? "off"
                                                             : "some units",
                  mib(engine.memory().high_water(zs::MemoryCategory::activations)));
      std::fputs(zs::examples::planned_against_measured(engine, training_peak).c_str(), stdout);
      std::fputs(model_states.c_str(), stdout);
      std::printf("final validation loss %.4f, unigram %.4f, bigram %.4f nats/byte; training %.1f s\n",
                  validation_loss, unigram, bigram, train_seconds);
    }
    return 0;
  } catch (const std::exception& e) {
    return zs::examples::exit_on_error("zs_gpt", e);
  }
}
