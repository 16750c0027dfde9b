// anvil bench MODEL ... [--runs N] [--warmup N] [--threads N] [--backend B] [--json]
//             [--precision fp32|fp16|bf16] [--in-flight N] [--shape ...]
//             [--profile [--top N]] [--no-optimize] [--serve] [--input ...]
// Latency of Session::run (min / median / mean in ms) on given or seeded random inputs, the
// backend's own device time per run where it measures one (cuda: CUDA events), and the
// throughput in images/s (batch = the first input's dim 0); --in-flight N adds a pipelined
// phase (Session::submit/wait, N runs in flight) whose wall time gives the throughput.
// --profile adds the backend's per-step times (top steps and a per-op-type summary).
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <deque>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <numeric>

#include "anvil/error.h"
#include "anvil/session.h"
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

struct Stats {
  double min = 0, median = 0, mean = 0, max = 0;
};
// The q-th percentile (0..100) of sorted values, linearly interpolated (numpy's default).
double percentile(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return 0;
  const double pos = q / 100.0 * static_cast<double>(sorted.size() - 1);
  const size_t lo = static_cast<size_t>(pos);
  const size_t hi = std::min(lo + 1, sorted.size() - 1);
  return sorted[lo] + (pos - static_cast<double>(lo)) * (sorted[hi] - sorted[lo]);
}
Stats stats_of(std::vector<double> v) {
  Stats s;
  if (v.empty()) return s;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  s.min = v.front();
  s.max = v.back();
  s.median = n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
  s.mean = std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(n);
  return s;
}

struct ProfileRow {
  std::string node, op;
  double ms_per_run = 0, percent = 0;
  int64_t calls = 0;
};
struct OpTypeRow {
  std::string op;
  int steps = 0;
  double ms_per_run = 0, percent = 0;
};

// Per-run times of the timed runs, slowest first: the session's profile after them minus
// the profile after the warm-up (`before`), divided by `runs`.
void summarize_profile(const std::vector<Session::OpTime>& before,
                       const std::vector<Session::OpTime>& after, int runs,
                       std::vector<ProfileRow>& rows, std::vector<OpTypeRow>& types,
                       double& total_ms) {
  rows.clear();
  types.clear();
  total_ms = 0;
  const double div = runs > 0 ? runs : 1;
  // The same executable lists its steps in the same order each time: subtract step by step;
  // else (a backend that lists steps differently) by (node, op), the first such step taking
  // the warm-up share of all steps of that name.
  bool same_steps = before.size() == after.size();
  for (size_t i = 0; same_steps && i < before.size(); ++i)
    same_steps = before[i].node == after[i].node && before[i].op == after[i].op;
  std::map<std::pair<std::string, std::string>, std::pair<double, int64_t>> base;
  if (!same_steps)
    for (const auto& t : before) {
      auto& b = base[{t.node, t.op}];
      b.first += t.ms;
      b.second += t.calls;
    }
  for (size_t i = 0; i < after.size(); ++i) {
    const auto& t = after[i];
    double ms = t.ms;
    int64_t calls = t.calls;
    if (same_steps) {
      ms -= before[i].ms;
      calls -= before[i].calls;
    } else if (auto it = base.find({t.node, t.op}); it != base.end()) {
      ms -= it->second.first;
      calls -= it->second.second;
      it->second = {0.0, 0};
    }
    if (calls <= 0 && ms <= 0) continue;  // a step that did not run (none in the timed runs)
    rows.push_back(ProfileRow{t.node, t.op, std::max(ms, 0.0) / div, 0, calls});
    total_ms += rows.back().ms_per_run;
  }
  std::map<std::string, OpTypeRow> by_op;
  for (auto& r : rows) {
    r.percent = total_ms > 0 ? 100.0 * r.ms_per_run / total_ms : 0;
    OpTypeRow& o = by_op[r.op];
    o.op = r.op;
    ++o.steps;
    o.ms_per_run += r.ms_per_run;
  }
  for (auto& [_, o] : by_op) {
    o.percent = total_ms > 0 ? 100.0 * o.ms_per_run / total_ms : 0;
    types.push_back(o);
  }
  std::stable_sort(rows.begin(), rows.end(), [](const ProfileRow& a, const ProfileRow& b) {
    return a.ms_per_run > b.ms_per_run;
  });
  std::stable_sort(types.begin(), types.end(), [](const OpTypeRow& a, const OpTypeRow& b) {
    return a.ms_per_run > b.ms_per_run;
  });
}

int bench_main(int argc, char** argv) {
  CLI::App app{"Measure a model's latency (ms per run) on given or random inputs.", "anvil bench"};
  std::vector<std::string> files;
  InputArgs in;
  int runs = 20, warmup = 3, threads = 1;
  unsigned seed = 0;
  std::string backend = default_backend();
  std::string precision = "fp32";
  int in_flight = 1;
  bool json = false;
  bool profile = false;
  bool no_optimize = false;
  bool serve = false;
  int top = 15;
  app.add_option("model", files, "the model file, then any further files it needs")->required();
  in.add_to(app);
  app.add_option("--runs", runs, "timed runs (default: 20)")->check(whole_number(1, 1000000));
  app.add_option("--warmup", warmup, "untimed runs first (default: 3)")
      ->check(whole_number(0, 1000000));
  app.add_option("--threads", threads, "threads (default: 1)")->check(whole_number(1, 1024));
  app.add_option("--backend", backend, backend_help(backend));
  app.add_option("--precision", precision,
                 "fp32, fp16 or bf16: storage precision of weights and activations (default: fp32)")
      ->check(CLI::IsMember({"fp32", "fp16", "bf16"}));
  app.add_option(
         "--in-flight", in_flight,
         "after the latency runs, --runs more runs pipelined with Session::submit/wait, N "
         "in flight at once (backends that overlap runs: cuda); the throughput "
         "(images/s = batch * runs / wall time) is then theirs (default: 1, no pipelined phase)")
      ->check(whole_number(1, 64));
  app.add_option("--seed", seed, "seed of the random inputs (default: 0)");
  app.add_flag("--json", json, "print one JSON object instead of text");
  app.add_flag("--profile", profile,
               "time every step of the backend (top steps and a per-op-type summary; JSON: "
               "\"profile\" and \"profile_by_op\")");
  app.add_flag("--serve", serve,
               "for benchmark harnesses (bench/harness.py): after the warm-up print one JSON line "
               "{\"ready\":true,...}, then for each stdin line 'run N' do N timed runs and print "
               "{\"times_ms\":[...]} (and \"device_times_ms\" where the backend measures them); "
               "at 'quit' or end of input print the --json report of all of them");
  app.add_flag("--no-optimize", no_optimize,
               "run the graph as imported (no fusion or other graph passes)");
  app.add_option("--top", top, "steps listed by --profile in text mode (default: 15)")
      ->check(whole_number(1, 1000000));
  if (int rc = parse_args(app, argc, argv); rc >= 0) return rc;

  check_backend(backend);
  auto t0 = std::chrono::steady_clock::now();
  PreparedModel pm = prepare_model(files, in, /*random_fill=*/true, seed);
  const double load_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  std::vector<ModelInput> inputs = pm.inputs;
  // A zero-size dimension (a batch of 0) runs nothing: no latency or throughput to report.
  for (const auto& mi : inputs) {
    auto it = pm.feed.find(mi.name);
    const Shape& s = it != pm.feed.end() ? it->second.shape() : mi.shape;
    for (size_t d = 0; d < s.size(); ++d)
      if (s[d] == 0)
        throw Error("input '" + mi.source_name + "' has shape " + shape_str(s) + ": dimension " +
                        std::to_string(d) +
                        " is 0, so a run computes nothing; give sizes >= 1 (--shape)",
                    files.front(), {}, "shape");
  }
  SessionOptions so;
  so.backend = backend;
  so.threads = threads;
  so.profile = profile;
  so.optimize = !no_optimize;
  so.precision = parse_precision(precision);
  so.in_flight = in_flight;
  Session session(std::move(pm.graph), so);
  // Images per run: the first input's leading (batch) dimension.
  const int64_t batch =
      !inputs.empty() && !inputs.front().shape.empty() && inputs.front().shape[0] > 0
          ? inputs.front().shape[0]
          : 1;

  const bool bar = isatty(STDERR_FILENO) == 1;
  for (int i = 0; i < warmup; ++i) {
    session.run(pm.feed);
    if (bar) progress(i + 1, warmup, true);
  }
  const std::vector<Session::OpTime> warm_profile =
      profile ? session.profile() : std::vector<Session::OpTime>{};
  if (bar && warmup) std::fputc('\n', stderr);
  std::vector<double> ms, device_ms;
  auto timed_run = [&] {
    auto a = std::chrono::steady_clock::now();
    session.run(pm.feed);
    ms.push_back(
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - a).count());
    const double d = session.last_device_ms();
    if (d >= 0) device_ms.push_back(d);
  };
  if (serve) {
    json = true;
    std::printf("{\"ready\":true,\"load_ms\":%.4f,\"compile_ms\":%.4f}\n", load_ms,
                session.compile_ms());
    std::fflush(stdout);
    std::string line;
    while (std::getline(std::cin, line)) {
      if (line == "quit") break;
      long k = 0;
      if (std::sscanf(line.c_str(), "run %ld", &k) != 1 || k < 1 || k > 1000000)
        throw Error("bench --serve: expected 'run N' or 'quit' on stdin, got '" + line + "'", {},
                    {}, "stdin");
      nlohmann::json t = nlohmann::json::array(), d = nlohmann::json::array();
      const size_t dev_before = device_ms.size();
      for (long i = 0; i < k; ++i) {
        timed_run();
        t.push_back(ms.back());
      }
      for (size_t i = dev_before; i < device_ms.size(); ++i) d.push_back(device_ms[i]);
      if (d.empty())
        std::printf("{\"times_ms\":%s}\n", t.dump().c_str());
      else  // the backend's own time of each of these runs (cuda: CUDA events)
        std::printf("{\"times_ms\":%s,\"device_times_ms\":%s}\n", t.dump().c_str(),
                    d.dump().c_str());
      std::fflush(stdout);
    }
    if (ms.empty()) timed_run();
    runs = static_cast<int>(ms.size());
  } else {
    ms.reserve(static_cast<size_t>(runs));
    for (int i = 0; i < runs; ++i) {
      timed_run();
      if (bar) progress(i + 1, runs, false);
    }
    if (bar) std::fputc('\n', stderr);
  }
  // The profile of the timed runs (the pipelined phase's runs are not in it).
  const std::vector<Session::OpTime> timed_profile =
      profile ? session.profile() : std::vector<Session::OpTime>{};
  // Pipelined phase: `runs` more runs with in_flight of them submitted at once.
  double pipe_wall_ms = 0;
  if (in_flight > 1 && !serve) {
    std::deque<int64_t> tickets;
    auto a = std::chrono::steady_clock::now();
    for (int i = 0; i < runs; ++i) {
      if (static_cast<int>(tickets.size()) >= in_flight) {
        session.wait(tickets.front());
        tickets.pop_front();
      }
      tickets.push_back(session.submit(pm.feed));
      if (bar) progress(i + 1, runs, false);
    }
    while (!tickets.empty()) {
      session.wait(tickets.front());
      tickets.pop_front();
    }
    pipe_wall_ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - a).count();
    if (bar) std::fputc('\n', stderr);
  }
  const double seq_wall_ms = std::accumulate(ms.begin(), ms.end(), 0.0);
  const double images_per_s =
      in_flight > 1 && !serve
          ? (pipe_wall_ms > 0 ? 1000.0 * static_cast<double>(batch) * runs / pipe_wall_ms : 0.0)
          : (seq_wall_ms > 0 ? 1000.0 * static_cast<double>(batch) *
                                   static_cast<double>(ms.size()) / seq_wall_ms
                             : 0.0);
  const Stats dev = stats_of(device_ms);

  std::vector<double> sorted = ms;
  std::sort(sorted.begin(), sorted.end());
  const size_t n = sorted.size();
  const double min_ms = sorted.front(), max_ms = sorted.back();
  const double median_ms = n % 2 ? sorted[n / 2] : 0.5 * (sorted[n / 2 - 1] + sorted[n / 2]);
  const double mean_ms = std::accumulate(ms.begin(), ms.end(), 0.0) / static_cast<double>(n);
  const double p50_ms = percentile(sorted, 50), p90_ms = percentile(sorted, 90),
               p99_ms = percentile(sorted, 99);
  double var = 0;
  for (double v : ms) var += (v - mean_ms) * (v - mean_ms);
  const double stddev_ms = n > 1 ? std::sqrt(var / static_cast<double>(n - 1)) : 0.0;
  const double rss = peak_rss_mb();
  std::vector<ProfileRow> prof;
  std::vector<OpTypeRow> prof_types;
  double prof_total_ms = 0;
  if (profile)
    summarize_profile(warm_profile, timed_profile, static_cast<int>(ms.size()), prof, prof_types,
                      prof_total_ms);

  if (json) {
    nlohmann::json j;
    j["model"] = files.front();
    j["backend"] = backend;
    j["precision"] = precision;
    j["threads"] = threads;
    j["batch"] = batch;
    j["in_flight"] = in_flight;
    // images/s: batch * runs / wall time of the pipelined phase (--in-flight > 1), else of
    // the timed runs one after another.
    j["images_per_s"] = images_per_s;
    if (in_flight > 1 && !serve)
      j["pipelined"] = {{"runs", runs}, {"wall_ms", pipe_wall_ms}, {"in_flight", in_flight}};
    if (!device_ms.empty())  // the backend's own time per run (cuda: CUDA events)
    {
      j["device_ms"] = {{"min", dev.min},
                        {"median", dev.median},
                        {"mean", dev.mean},
                        {"max", dev.max},
                        {"runs", device_ms.size()}};
      j["device_times_ms"] = device_ms;  // every timed run's, in order
    }
    j["runs"] = runs;
    j["warmup"] = warmup;
    j["min_ms"] = min_ms;
    j["median_ms"] = median_ms;
    j["mean_ms"] = mean_ms;
    j["max_ms"] = max_ms;
    j["p50_ms"] = p50_ms;  // percentiles of the timed runs, interpolated as numpy.percentile
    j["p90_ms"] = p90_ms;
    j["p99_ms"] = p99_ms;
    j["stddev_ms"] = stddev_ms;
    j["times_ms"] = ms;  // every timed run, in order
    j["load_ms"] = load_ms;
    j["compile_ms"] = session.compile_ms();
    j["peak_rss_mb"] = rss;
    nlohmann::json ins = nlohmann::json::array();
    for (const auto& mi : inputs)
      ins.push_back(
          {{"name", mi.source_name}, {"shape", mi.shape}, {"dtype", numpy_dtype_name(mi.dtype)}});
    j["inputs"] = ins;
    j["preprocess"] = pm.notes;
    if (profile) {
      // Times are per run, averaged over the timed runs (the warm-up is left out).
      nlohmann::json pa = nlohmann::json::array();
      for (const auto& r : prof)
        pa.push_back({{"node", r.node},
                      {"op", r.op},
                      {"ms", r.ms_per_run},
                      {"percent", r.percent},
                      {"calls", r.calls}});
      j["profile"] = pa;
      nlohmann::json po = nlohmann::json::array();
      for (const auto& o : prof_types)
        po.push_back(
            {{"op", o.op}, {"steps", o.steps}, {"ms", o.ms_per_run}, {"percent", o.percent}});
      j["profile_by_op"] = po;
      j["profile_total_ms"] = prof_total_ms;
      j["profiled_runs"] = runs;
    }
    std::printf("%s\n", j.dump().c_str());
  } else {
    std::printf("model     %s\n", files.front().c_str());
    for (const auto& mi : inputs)
      std::printf("input     %s %s %s%s\n", mi.source_name.c_str(), shape_str(mi.shape).c_str(),
                  numpy_dtype_name(mi.dtype).c_str(), in.specs.empty() ? " (random)" : "");
    for (const auto& note : pm.notes) std::printf("%s\n", note.c_str());
    std::printf("backend   %s, %d thread%s, %s\n", backend.c_str(), threads,
                threads == 1 ? "" : "s", precision.c_str());
    std::printf("load      %.2f ms (import + inputs)\ncompile   %.2f ms\n", load_ms,
                session.compile_ms());
    std::printf(
        "latency   min %.3f ms  median %.3f ms  mean %.3f ms  max %.3f ms  (%d runs, %d warmup)\n",
        min_ms, median_ms, mean_ms, max_ms, runs, warmup);
    std::printf("percentile P50 %.3f ms  P90 %.3f ms  P99 %.3f ms\n", p50_ms, p90_ms, p99_ms);
    if (!device_ms.empty())
      std::printf(
          "device    min %.3f ms  median %.3f ms  mean %.3f ms  (per run, measured by the %s "
          "backend)\n",
          dev.min, dev.median, dev.mean, backend.c_str());
    if (in_flight > 1)
      std::printf("throughput %.1f images/s  (batch %lld, %d runs with %d in flight in %.2f ms)\n",
                  images_per_s, static_cast<long long>(batch), runs, in_flight, pipe_wall_ms);
    else
      std::printf("throughput %.1f images/s  (batch %lld, runs one after another)\n", images_per_s,
                  static_cast<long long>(batch));
    std::printf("peak RSS  %.1f MB\n", rss);
    if (profile) {
      if (prof.empty()) {
        std::printf("profile   the %s backend reports no per-step times\n", backend.c_str());
      } else {
        std::printf(
            "\nprofile   %.3f ms/run in %zu steps (%.1f%% of the mean latency %.3f ms; over %d "
            "runs)\n",
            prof_total_ms, prof.size(), mean_ms > 0 ? 100.0 * prof_total_ms / mean_ms : 0.0,
            mean_ms, runs);
        const size_t shown = std::min(prof.size(), static_cast<size_t>(top));
        std::printf("\ntop %zu steps by time\n  %9s %6s  %-20s %s\n", shown, "ms/run", "%", "op",
                    "node");
        for (size_t i = 0; i < shown; ++i)
          std::printf("  %9.3f %5.1f%%  %-20s %s\n", prof[i].ms_per_run, prof[i].percent,
                      prof[i].op.c_str(), prof[i].node.c_str());
        std::printf("\nby op type\n  %9s %6s %6s  %s\n", "ms/run", "%", "steps", "op");
        for (const auto& o : prof_types)
          std::printf("  %9.3f %5.1f%% %6d  %s\n", o.ms_per_run, o.percent, o.steps, o.op.c_str());
      }
    }
  }
  return 0;
}

const CommandRegistrar reg{
    Command{"bench", "measure latency on given or random inputs", bench_main}};

}  // namespace
}  // namespace anvil::cli
