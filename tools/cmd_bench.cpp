// anvil bench MODEL ... [--runs N] [--warmup N] [--threads N] [--backend B] [--json]
//             [--input ...]
// Latency of Session::run (min / median / mean in ms) on given or seeded random inputs.
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <numeric>

#include "anvil/error.h"
#include "anvil/session.h"
#include "backend/backend.h"
#include "cli_util.h"
#include "commands.h"

namespace anvil::cli {
namespace {

double peak_rss_mb() {
  struct rusage ru {};
  if (getrusage(RUSAGE_SELF, &ru) != 0) return 0.0;
  return static_cast<double>(ru.ru_maxrss) / 1024.0;  // Linux: kilobytes
}

// A progress bar on stderr, redrawn only when its percentage changes.
void progress(int done, int total, bool warmup) {
  const int pct = total ? static_cast<int>(100LL * done / total) : 100;
  const int prev = total ? static_cast<int>(100LL * (done - 1) / total) : -1;
  if (done > 1 && pct == prev && done != total) return;
  const int width = 30;
  const int filled = pct * width / 100;
  std::fprintf(stderr, "\r%s [%.*s%*s] %d/%d", warmup ? "warmup" : "runs  ", filled,
               "##############################", width - filled, "", done, total);
  std::fflush(stderr);
}

int bench_main(int argc, char** argv) {
  CLI::App app{"Measure a model's latency (ms per run) on given or random inputs.", "anvil bench"};
  std::vector<std::string> files;
  InputArgs in;
  int runs = 20, warmup = 3, threads = 1;
  unsigned seed = 0;
  std::string backend = default_backend();
  bool json = false;
  app.add_option("model", files, "the model file, then any further files it needs")->required();
  in.add_to(app);
  app.add_option("--runs", runs, "timed runs (default: 20)")->check(CLI::Range(1, 1000000));
  app.add_option("--warmup", warmup, "untimed runs first (default: 3)")->check(CLI::Range(0, 1000000));
  app.add_option("--threads", threads, "threads (default: 1)")->check(CLI::Range(1, 1024));
  app.add_option("--backend", backend, "reference or cpu (default: " + backend + ")");
  app.add_option("--seed", seed, "seed of the random inputs (default: 0)");
  app.add_flag("--json", json, "print one JSON object instead of text");
  if (int rc = parse_args(app, argc, argv); rc >= 0) return rc;

  find_backend(backend);
  auto t0 = std::chrono::steady_clock::now();
  PreparedModel pm = prepare_model(files, in, /*random_fill=*/true, seed);
  const double load_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  std::vector<ModelInput> inputs = pm.inputs;
  SessionOptions so;
  so.backend = backend;
  so.threads = threads;
  Session session(std::move(pm.graph), so);

  const bool bar = isatty(STDERR_FILENO) == 1;
  for (int i = 0; i < warmup; ++i) {
    session.run(pm.feed);
    if (bar) progress(i + 1, warmup, true);
  }
  if (bar && warmup) std::fputc('\n', stderr);
  std::vector<double> ms;
  ms.reserve(static_cast<size_t>(runs));
  for (int i = 0; i < runs; ++i) {
    auto a = std::chrono::steady_clock::now();
    session.run(pm.feed);
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - a).count());
    if (bar) progress(i + 1, runs, false);
  }
  if (bar) std::fputc('\n', stderr);

  std::vector<double> sorted = ms;
  std::sort(sorted.begin(), sorted.end());
  const size_t n = sorted.size();
  const double min_ms = sorted.front(), max_ms = sorted.back();
  const double median_ms = n % 2 ? sorted[n / 2] : 0.5 * (sorted[n / 2 - 1] + sorted[n / 2]);
  const double mean_ms = std::accumulate(ms.begin(), ms.end(), 0.0) / static_cast<double>(n);
  double var = 0;
  for (double v : ms) var += (v - mean_ms) * (v - mean_ms);
  const double stddev_ms = n > 1 ? std::sqrt(var / static_cast<double>(n - 1)) : 0.0;
  const double rss = peak_rss_mb();

  if (json) {
    nlohmann::json j;
    j["model"] = files.front();
    j["backend"] = backend;
    j["threads"] = threads;
    j["runs"] = runs;
    j["warmup"] = warmup;
    j["min_ms"] = min_ms;
    j["median_ms"] = median_ms;
    j["mean_ms"] = mean_ms;
    j["max_ms"] = max_ms;
    j["stddev_ms"] = stddev_ms;
    j["load_ms"] = load_ms;
    j["compile_ms"] = session.compile_ms();
    j["peak_rss_mb"] = rss;
    nlohmann::json ins = nlohmann::json::array();
    for (const auto& mi : inputs)
      ins.push_back({{"name", mi.source_name}, {"shape", mi.shape}, {"dtype", numpy_dtype_name(mi.dtype)}});
    j["inputs"] = ins;
    j["preprocess"] = pm.notes;
    std::printf("%s\n", j.dump().c_str());
  } else {
    std::printf("model     %s\n", files.front().c_str());
    for (const auto& mi : inputs)
      std::printf("input     %s %s %s%s\n", mi.source_name.c_str(), shape_str(mi.shape).c_str(),
                  numpy_dtype_name(mi.dtype).c_str(),
                  in.specs.empty() ? " (random)" : "");
    for (const auto& note : pm.notes) std::printf("%s\n", note.c_str());
    std::printf("backend   %s, %d thread%s\n", backend.c_str(), threads, threads == 1 ? "" : "s");
    std::printf("load      %.2f ms (import + inputs)\ncompile   %.2f ms\n", load_ms, session.compile_ms());
    std::printf("latency   min %.3f ms  median %.3f ms  mean %.3f ms  max %.3f ms  (%d runs, %d warmup)\n",
                min_ms, median_ms, mean_ms, max_ms, runs, warmup);
    std::printf("peak RSS  %.1f MB\n", rss);
  }
  return 0;
}

const CommandRegistrar reg{Command{"bench", "measure latency on given or random inputs", bench_main}};

}  // namespace
}  // namespace anvil::cli
