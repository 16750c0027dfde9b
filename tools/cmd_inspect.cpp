// anvil inspect MODEL [MORE_FILES...] --tensor NAME [--input NAME=FILE]... [--pixel Y,X]
//               [--channel C] [--batch B] [--stats]
// Runs the model and shows one tensor in the source framework's layout: a pixel's channel
// vector (out[b, y, x, :] in NHWC, out[b, :, y, x] in NCHW), one channel as a plane, and
// statistics (min, max, mean, std, NaN/Inf counts). Without --input, inputs are seeded random.
#include <cmath>
#include <cstdio>
#include <sstream>

#include "anvil/error.h"
#include "anvil/session.h"
#include "anvil/verify.h"
#include "cli_util.h"
#include "commands.h"

namespace anvil::cli {
namespace {

std::vector<int64_t> parse_ints(const std::string& s, const std::string& field) {
  std::vector<int64_t> r;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    try {
      size_t used = 0;
      long long v = std::stoll(item, &used);
      if (used != item.size() || v < 0) throw std::invalid_argument(item);
      r.push_back(v);
    } catch (const std::exception&) {
      throw Error("expected non-negative integers separated by commas, found '" + s + "'", {}, {},
                  field);
    }
  }
  return r;
}

std::string val(double x) {
  char b[32];
  std::snprintf(b, sizeof b, "%.6g", x);
  return b;
}

int inspect_main(int argc, char** argv) {
  CLI::App app{
      "Show one tensor of a model in the source framework's layout: a pixel's channels, a channel "
      "plane, statistics. Without --input the inputs are seeded random values.",
      "anvil inspect"};
  std::vector<std::string> files;
  InputArgs in;
  std::string tensor, pixel, backend = "reference";
  int64_t channel = -1, batch = 0;
  bool stats = false;
  app.add_option("model", files, "the model file, then any further files it needs")->required();
  in.add_to(app);
  app.add_option("--tensor,-t", tensor, "the tensor (source or canonical name)")->required();
  app.add_option("--pixel", pixel,
                 "Y,X (rank-4 tensors) or X (rank 3): that position's channel vector");
  app.add_option("--channel", channel, "one channel as a plane (rank 3 and 4)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--batch", batch, "batch index for --pixel/--channel (default: 0)")
      ->check(CLI::NonNegativeNumber);
  app.add_flag("--stats", stats, "min, max, mean, std, NaN and Inf counts (the default)");
  app.add_option("--backend", backend, backend_help(backend));
  if (int rc = parse_args(app, argc, argv); rc >= 0) return rc;
  if (pixel.empty() && channel < 0) stats = true;
  check_backend(backend);

  PreparedModel pm = prepare_model(files, in, /*random_fill=*/true);
  for (const auto& note : pm.notes) std::printf("%s\n", note.c_str());
  if (in.specs.empty())
    for (const auto& mi : pm.inputs)
      std::printf("input %s: seeded random values (give --input for real data)\n",
                  mi.source_name.c_str());
  const int v = pm.graph.find_value_by_any_name(tensor);
  if (v < 0)
    throw Error("no tensor named '" + tensor + "' in the model", files.front(), {}, "tensor");
  const Value value = pm.graph.values[static_cast<size_t>(v)];
  const bool last = diag::channels_last_of(pm.graph, value);
  SessionOptions so;
  so.backend = backend;
  so.taps = {tensor};
  Session s(std::move(pm.graph), so);
  Tensor t = s.run(pm.feed, {tensor}).at(tensor);
  const int R = t.rank();
  std::string layout = value.prov.source_layout;
  if (layout.empty() && R == 4) layout = last ? "NHWC" : "NCHW";
  std::printf("%s %s %s%s\n", source_key(value).c_str(), shape_str(t.shape()).c_str(),
              numpy_dtype_name(t.dtype()).c_str(), layout.empty() ? "" : (" " + layout).c_str());

  if (stats) {
    double mn = INFINITY, mx = -INFINITY, sum = 0, sq = 0;
    int64_t nan = 0, inf = 0, n = 0;
    for (int64_t i = 0; i < t.numel(); ++i) {
      const double x = t.get(i);
      if (std::isnan(x)) {
        ++nan;
        continue;
      }
      if (std::isinf(x)) {
        ++inf;
        continue;
      }
      mn = std::min(mn, x), mx = std::max(mx, x), sum += x, sq += x * x, ++n;
    }
    const double mean = n ? sum / static_cast<double>(n) : NAN;
    const double var = n ? std::max(0.0, sq / static_cast<double>(n) - mean * mean) : NAN;
    std::printf("stats: min %s max %s mean %s std %s nan %lld inf %lld (of %lld)\n",
                val(n ? mn : NAN).c_str(), val(n ? mx : NAN).c_str(), val(mean).c_str(),
                val(std::sqrt(var)).c_str(), static_cast<long long>(nan),
                static_cast<long long>(inf), static_cast<long long>(t.numel()));
  }
  if (R >= 1 && batch >= t.dim(0) && (!pixel.empty() || channel >= 0))
    throw Error("--batch " + std::to_string(batch) + " is out of range for " + shape_str(t.shape()),
                {}, {}, "batch");
  auto at = [&](const std::vector<int64_t>& idx) {
    int64_t f = 0;
    for (int d = 0; d < R; ++d) f = f * t.dim(d) + idx[static_cast<size_t>(d)];
    return t.get(f);
  };
  if (!pixel.empty()) {
    auto p = parse_ints(pixel, "pixel");
    const int sp = R - 2;  // spatial dims
    if (R < 3 || static_cast<int>(p.size()) != sp)
      throw Error("--pixel needs " + std::to_string(std::max(sp, 1)) +
                      " coordinate(s) for a tensor of shape " + shape_str(t.shape()),
                  {}, {}, "pixel");
    const int cax = last ? R - 1 : 1;
    std::vector<int64_t> idx(static_cast<size_t>(R), 0);
    idx[0] = batch;
    int k = 0;
    std::string where = std::to_string(batch);
    for (int d = 1; d < R; ++d) {
      if (d == cax) {
        where += ", :";
        continue;
      }
      if (p[static_cast<size_t>(k)] >= t.dim(d))
        throw Error("--pixel " + pixel + " is out of range for " + shape_str(t.shape()), {}, {},
                    "pixel");
      idx[static_cast<size_t>(d)] = p[static_cast<size_t>(k++)];
      where += ", " + std::to_string(idx[static_cast<size_t>(d)]);
    }
    std::printf("pixel [%s] (%lld channels):\n", where.c_str(), static_cast<long long>(t.dim(cax)));
    for (int64_t c = 0; c < t.dim(cax); ++c) {
      idx[static_cast<size_t>(cax)] = c;
      std::printf("%s%s", c ? " " : "  ", val(at(idx)).c_str());
      if (c % 8 == 7 && c + 1 < t.dim(cax)) std::printf("\n ");
    }
    std::printf("\n");
  }
  if (channel >= 0) {
    if (R < 3)
      throw Error("--channel needs a tensor of rank 3 or 4, not " + shape_str(t.shape()), {}, {},
                  "channel");
    const int cax = last ? R - 1 : 1;
    if (channel >= t.dim(cax))
      throw Error(
          "--channel " + std::to_string(channel) + " is out of range for " + shape_str(t.shape()),
          {}, {}, "channel");
    std::vector<int> sp;
    for (int d = 1; d < R; ++d)
      if (d != cax) sp.push_back(d);
    const int64_t H = R == 4 ? t.dim(sp[0]) : 1, W = t.dim(sp.back());
    std::printf(
        "channel %lld (%s):\n", static_cast<long long>(channel),
        last ? (R == 4 ? "[b, :, :, c]" : "[b, :, c]") : (R == 4 ? "[b, c, :, :]" : "[b, c, :]"));
    std::vector<int64_t> idx(static_cast<size_t>(R), 0);
    idx[0] = batch;
    idx[static_cast<size_t>(cax)] = channel;
    for (int64_t y = 0; y < H; ++y) {
      if (R == 4) idx[static_cast<size_t>(sp[0])] = y;
      std::printf(" ");
      for (int64_t x = 0; x < W; ++x) {
        idx[static_cast<size_t>(sp.back())] = x;
        std::printf(" %11s", val(at(idx)).c_str());
      }
      std::printf("\n");
    }
  }
  std::fflush(stdout);
  return 0;
}

const CommandRegistrar reg{
    Command{"inspect", "show one tensor in the source layout: pixel, channel plane, statistics",
            inspect_main}};

}  // namespace
}  // namespace anvil::cli
