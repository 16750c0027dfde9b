// ConvPlan::Impl::select (conv.h, conv_impl.h): builds every path that applies to the
// convolution, checks each with a trial run on scratch data, times them with CUDA events and
// keeps the fastest (see the top of conv.cpp). ANVIL_CUDA_CONV_PATH forces one.
#include <cudnn.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <vector>

#include "backend/cuda/conv_impl.h"

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

namespace anvil::cuda {

void ConvPlan::Impl::select(cudnnHandle_t h, cudaStream_t stream, bool honor_env) {
  const char* env = honor_env ? std::getenv("ANVIL_CUDA_CONV_PATH") : nullptr;
  set_dw_tiles();
  std::string forced = env ? env : "";
  if (forced.rfind("depthwise:", 0) == 0) {  // depthwise:N, one tiling (tests)
    const int t = std::atoi(forced.c_str() + 10);
    forced = "depthwise";
    if (std::find(dw_tiles.begin(), dw_tiles.end(), t) != dw_tiles.end()) dw_tiles = {t};
  }
  if (forced == "cudnn:unfused") {  // cuDNN's plain convolution + our epilogue (tests)
    forced = "cudnn";
    cudnn_unfused = true;
  }
  std::vector<Path> cands;  // depthwise: one entry per column tiling (dw_tiles)
  auto applies = [&](Path c) {
    switch (c) {
      case Path::Gemm:
        return gemm_applies();
      case Path::Im2col:
        return im2col_applies();
      case Path::Depthwise:
        return depthwise_applies();
      case Path::Cudnn:
        return true;
    }
    return false;
  };
  const Path fp = forced == "gemm"        ? Path::Gemm
                  : forced == "im2col"    ? Path::Im2col
                  : forced == "depthwise" ? Path::Depthwise
                                          : Path::Cudnn;
  if ((forced == "gemm" || forced == "im2col" || forced == "depthwise" || forced == "cudnn") &&
      applies(fp)) {
    cands.push_back(fp);
    if (fp == Path::Depthwise)  // every tiling of the kernel
      for (size_t i = 1; i < dw_tiles.size(); ++i) cands.push_back(fp);
  } else {
    if (gemm_applies()) cands.push_back(Path::Gemm);
    // A 1x1 convolution the plain gemm covers gains nothing from copying its input first.
    else if (im2col_applies())
      cands.push_back(Path::Im2col);
    if (depthwise_applies())
      for (size_t i = 0; i < dw_tiles.size(); ++i) cands.push_back(Path::Depthwise);
    cands.push_back(Path::Cudnn);
  }
  // cuDNN fused and unfused (second Cudnn entry) where there is an epilogue to fuse.
  const bool epilogue = p.has_bias || p.relu || p.has_residual;
  if (!p.transpose && epilogue && cands.back() == Path::Cudnn && cands.size() > 1)
    cands.push_back(Path::Cudnn);
  if (cands.size() == 1 && cands[0] == Path::Cudnn) {
    path = Path::Cudnn;
    choose(h, stream);
    total_ws = ws_bytes;
    return;
  }

  // Scratch data: the weights' element count is the same in every layout.
  const DType dt = p.dtype;
  const size_t es = element_size(dt);
  const size_t xn = static_cast<size_t>(p.n) * p.c * p.h * p.w;
  const size_t yn = static_cast<size_t>(p.n) * p.k * p.oh * p.ow;
  const size_t wn = static_cast<size_t>(p.k) * (p.c / p.groups) * p.r * p.s;
  DeviceBuffer x = random_device(dt, xn, 5), w = random_device(dt, wn, 6);
  DeviceBuffer b = random_device(dt, static_cast<size_t>(p.k), 7);
  DeviceBuffer z = p.has_residual ? random_device(dt, yn, 8) : DeviceBuffer();
  DeviceBuffer y(yn * es);
  ANVIL_CUDA_CHECK(cudaStreamSynchronize(stream));

  cudaEvent_t e0 = nullptr, e1 = nullptr;
  ANVIL_CUDA_CHECK(cudaEventCreate(&e0));
  ANVIL_CUDA_CHECK(cudaEventCreate(&e1));
  struct Events {
    cudaEvent_t a, b;
    ~Events() {
      (void)cudaEventDestroy(a);
      (void)cudaEventDestroy(b);
    }
  } events{e0, e1};

  float best_ms = std::numeric_limits<float>::infinity();
  Path best = Path::Cudnn;
  int best_tile = 0;
  size_t best_ws = 0;
  size_t dw_next = 0;  // the next depthwise tiling to try
  int cudnn_seen = 0;  // Cudnn entries so far: the first fused, the second unfused
  bool best_unfused = false;
  std::string first_error;
  for (Path c : cands) {
    try {
      path = c;
      if (c == Path::Depthwise) dw_tile = dw_tiles[dw_next++];
      if (c == Path::Cudnn) cudnn_unfused = cudnn_seen++ > 0;
      size_t need = 0;
      if (c == Path::Cudnn) {
        choose(h, stream);
        need = ws_bytes;
      } else if (c == Path::Gemm || c == Path::Im2col) {
        col_k = c == Path::Im2col ? im2col_k() : p.c;
        make_gemm(col_k);
        col_bytes = c == Path::Im2col ? align_up(im2col_bytes(), 256) : 0;
        need = col_bytes + gemm->workspace_bytes();
      }
      DeviceBuffer ws(need);
      auto once = [&] {
        if (c == Path::Cudnn) {
          const cudnnStatus_t st =
              enqueue(h, stream, x.get(), w.get(), b.get(), z.get(), y.get(), ws.get());
          if (st != CUDNN_STATUS_SUCCESS)
            fail(std::string("cuDNN failed: ") + cudnnGetErrorString(st));
        } else {
          enqueue_own(stream, x.get(), w.get(), b.get(), z.get(), y.get(), ws.get());
        }
      };
      once();  // trial run (cuDNN's choose has run its own already)
      ANVIL_CUDA_CHECK(cudaStreamSynchronize(stream));
      once();
      ANVIL_CUDA_CHECK(cudaEventRecord(e0, stream));
      once();
      ANVIL_CUDA_CHECK(cudaEventRecord(e1, stream));
      ANVIL_CUDA_CHECK(cudaEventSynchronize(e1));
      float ms = 0.f;
      ANVIL_CUDA_CHECK(cudaEventElapsedTime(&ms, e0, e1));
      // About 1 ms of runs (3 to 50), twice, keeping the faster round: one short round
      // was seen to misorder candidates within a few percent of each other.
      const int reps = std::clamp(static_cast<int>(1.f / std::max(ms, 1e-3f)), 3, 50);
      float round_ms = std::numeric_limits<float>::infinity();
      for (int round = 0; round < 2; ++round) {
        ANVIL_CUDA_CHECK(cudaEventRecord(e0, stream));
        for (int i = 0; i < reps; ++i) once();
        ANVIL_CUDA_CHECK(cudaEventRecord(e1, stream));
        ANVIL_CUDA_CHECK(cudaEventSynchronize(e1));
        ANVIL_CUDA_CHECK(cudaEventElapsedTime(&ms, e0, e1));
        round_ms = std::min(round_ms, ms / static_cast<float>(reps));
      }
      ms = round_ms;
      if (ms < best_ms) {
        best_ms = ms;
        best = c;
        best_tile = dw_tile;
        best_unfused = cudnn_unfused;
        best_ws = need;
      }
    } catch (const Error& e) {
      (void)cudaStreamSynchronize(stream);
      (void)cudaGetLastError();
      if (first_error.empty()) first_error = e.what();
    }
  }
  if (!std::isfinite(best_ms)) {
    if (cands.size() > 1) fail("no convolution path runs this configuration: " + first_error);
    select(h, stream, false);  // the forced path failed: the normal choice
    return;
  }
  path = best;
  dw_tile = best_tile;
  total_ws = best_ws;
  if (path == Path::Cudnn && best_unfused != cudnn_unfused) {
    cudnn_unfused = best_unfused;  // the cuDNN state is the last one built: rebuild the best
    choose(h, stream);
    total_ws = ws_bytes;
  }
  if (path == Path::Im2col) {
    col_k = im2col_k();
    col_bytes = align_up(im2col_bytes(), 256);
    make_gemm(col_k);  // (no-op: the last one built)
  }
  if (path == Path::Gemm) {
    col_k = p.c;
    col_bytes = 0;
    make_gemm(col_k);
  }
  if (path != Path::Gemm && path != Path::Im2col) gemm.reset();
}

}  // namespace anvil::cuda

#pragma GCC diagnostic pop
