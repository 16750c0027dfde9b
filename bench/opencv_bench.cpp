// OpenCV dnn runner of the benchmark harness (bench/harness.py); built by the harness:
//   g++ -O2 -std=c++17 bench/opencv_bench.cpp -o bench/build/opencv_bench $(pkg-config --cflags --libs opencv4)
//
//   opencv_bench MODEL.onnx INPUT.npy --threads N --warmup W --runs R [--output OUT.npy] [--serve]
//
// cv::dnn::readNetFromONNX, the default (OpenCV) backend on the CPU target,
// cv::setNumThreads(N); times net.setInput + net.forward. Prints one JSON line like
// ort_bench.mjs; --serve as `anvil bench --serve` (stdin lines 'run N', 'quit'). Exit 3 when OpenCV cannot load or run the model (the harness then reports
// OpenCV as unsupported for it), 2 for bad usage.
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include <opencv2/core.hpp>
#include <opencv2/core/utils/logger.hpp>
#include <opencv2/dnn.hpp>

namespace {

[[noreturn]] void usage(const std::string& msg) {
  std::cerr << "opencv_bench: " << msg
            << "\nusage: opencv_bench MODEL.onnx INPUT.npy --threads N --warmup W --runs R [--output OUT.npy]\n";
  std::exit(2);
}

// A little-endian float32 C-order .npy.
cv::Mat read_npy(const std::string& file) {
  std::ifstream f(file, std::ios::binary);
  if (!f) throw std::runtime_error(file + ": cannot open");
  char magic[8];
  f.read(magic, 8);
  if (!f || std::memcmp(magic, "\x93NUMPY", 6) != 0) throw std::runtime_error(file + ": not a .npy file");
  uint32_t hlen = 0;
  if (magic[6] == 1) {
    uint16_t h16 = 0;
    f.read(reinterpret_cast<char*>(&h16), 2);
    hlen = h16;
  } else {
    f.read(reinterpret_cast<char*>(&hlen), 4);
  }
  std::string header(hlen, '\0');
  f.read(header.data(), hlen);
  if (header.find("'<f4'") == std::string::npos) throw std::runtime_error(file + ": only float32 .npy is supported");
  if (header.find("'fortran_order': True") != std::string::npos)
    throw std::runtime_error(file + ": Fortran order is not supported");
  std::smatch m;
  if (!std::regex_search(header, m, std::regex("'shape':\\s*\\(([^)]*)\\)")))
    throw std::runtime_error(file + ": no shape in the header");
  std::vector<int> shape;
  std::stringstream ss(m[1].str());
  std::string item;
  while (std::getline(ss, item, ','))
    if (item.find_first_not_of(" ") != std::string::npos) shape.push_back(std::stoi(item));
  cv::Mat mat(static_cast<int>(shape.size()), shape.data(), CV_32F);
  f.read(reinterpret_cast<char*>(mat.data), static_cast<std::streamsize>(mat.total() * sizeof(float)));
  if (!f) throw std::runtime_error(file + ": truncated data");
  return mat;
}

void write_npy(const std::string& file, const cv::Mat& m) {
  std::string shape;
  for (int i = 0; i < m.dims; ++i) shape += std::to_string(m.size[i]) + (m.dims == 1 || i + 1 < m.dims ? ", " : "");
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + shape + "), }";
  const size_t total = 10 + header.size() + 1;
  header += std::string((64 - total % 64) % 64, ' ') + "\n";
  std::ofstream f(file, std::ios::binary);
  const uint16_t hl = static_cast<uint16_t>(header.size());
  f.write("\x93NUMPY\x01\x00", 8);
  f.write(reinterpret_cast<const char*>(&hl), 2);
  f << header;
  cv::Mat c = m.isContinuous() ? m : m.clone();
  f.write(reinterpret_cast<const char*>(c.data), static_cast<std::streamsize>(c.total() * sizeof(float)));
}

double peak_rss_mb() {
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_maxrss) / 1024.0;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> pos;
  int threads = 1, warmup = 3, runs = 20;
  std::string output;
  bool serve = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage(a + " needs a value");
      return argv[++i];
    };
    try {
      if (a == "--threads") threads = std::stoi(value());
      else if (a == "--warmup") warmup = std::stoi(value());
      else if (a == "--runs") runs = std::stoi(value());
      else if (a == "--output") output = value();
      else if (a == "--serve") serve = true;
      else if (a.rfind("--", 0) == 0) usage("unknown option " + a);
      else pos.push_back(a);
    } catch (const std::logic_error&) {
      usage("bad value for " + a);
    }
  }
  if (pos.size() != 2) usage("expected MODEL.onnx and INPUT.npy");
  if (threads < 1 || runs < 1 || warmup < 0) usage("--threads and --runs must be at least 1");

  cv::utils::logging::setLogLevel(cv::utils::logging::LOG_LEVEL_ERROR);
  cv::setNumThreads(threads);
  const auto t0 = std::chrono::steady_clock::now();
  cv::dnn::Net net;
  cv::Mat x;
  try {
    x = read_npy(pos[1]);
  } catch (const std::exception& e) {
    std::cerr << "opencv_bench: " << e.what() << "\n";
    return 2;
  }
  std::vector<double> times;
  cv::Mat y;
  double load_ms = 0;
  try {
    net = cv::dnn::readNetFromONNX(pos[0]);
    net.setPreferableBackend(cv::dnn::DNN_BACKEND_OPENCV);
    net.setPreferableTarget(cv::dnn::DNN_TARGET_CPU);
    load_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    for (int i = 0; i < warmup; ++i) {
      net.setInput(x);
      y = net.forward();
    }
    auto timed_run = [&] {
      const auto a = std::chrono::steady_clock::now();
      net.setInput(x);
      y = net.forward();
      times.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - a).count());
    };
    if (serve) {
      std::printf("{\"ready\":true,\"load_ms\":%.3f}\n", load_ms);
      std::fflush(stdout);
      std::string line;
      while (std::getline(std::cin, line)) {
        if (line == "quit") break;
        long k = 0;
        if (std::sscanf(line.c_str(), "run %ld", &k) != 1 || k < 1) usage("--serve: expected 'run N' or 'quit', got '" + line + "'");
        const size_t start = times.size();
        for (long i = 0; i < k; ++i) timed_run();
        std::printf("{\"times_ms\":[");
        for (size_t i = start; i < times.size(); ++i) std::printf("%s%.6f", i > start ? "," : "", times[i]);
        std::printf("]}\n");
        std::fflush(stdout);
      }
      if (times.empty()) timed_run();
      runs = static_cast<int>(times.size());
    } else {
      for (int i = 0; i < runs; ++i) timed_run();
    }
  } catch (const cv::Exception& e) {
    std::cerr << "opencv_bench: OpenCV cannot run " << pos[0] << ": " << e.what() << "\n";
    return 3;
  }
  if (!output.empty()) write_npy(output, y);
  std::printf("{\"engine\":\"opencv\",\"version\":\"%s\",\"threads\":%d,\"warmup\":%d,\"runs\":%d,\"times_ms\":[",
              CV_VERSION, threads, warmup, runs);
  for (size_t i = 0; i < times.size(); ++i) std::printf("%s%.6f", i ? "," : "", times[i]);
  std::printf("],\"load_ms\":%.3f,\"peak_rss_mb\":%.1f}\n", load_ms, peak_rss_mb());
  return 0;
}
