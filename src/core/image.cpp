// Image files into input tensors: decoded by stb_image (Debian's libstb), resized by
// core/resample.h.
#include "anvil/image.h"

#include <stb/stb_image.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <vector>

#include "anvil/error.h"
#include "core/file_io.h"
#include "core/resample.h"

namespace anvil {
namespace {

// Largest image decoded, in pixels (8192x8192: 805 MB as 3-channel floats).
constexpr int64_t kMaxImagePixels = int64_t{1} << 26;

std::string fmt_float(float v) {
  std::ostringstream s;
  s << v;
  return s.str();
}

// The format a file's first bytes announce ("" when none that stb_image reads).
std::string image_format(const std::string& b) {
  auto starts = [&](const char* m, size_t n) {
    return b.size() >= n && b.compare(0, n, m, n) == 0;
  };
  if (starts("\x89PNG", 4)) return "PNG";
  if (starts("\xFF\xD8", 2)) return "JPEG";
  if (starts("BM", 2)) return "BMP";
  if (starts("GIF8", 4)) return "GIF";
  if (starts("8BPS", 4)) return "PSD";
  if (starts("#?RADIANCE", 10) || starts("#?RGBE", 6)) return "HDR";
  if (b.size() >= 2 && b[0] == 'P' && (b[1] == '5' || b[1] == '6')) return "PNM";
  return "";
}

// Why stb_image failed, as one readable line: stb builds some reasons from file bytes (an
// unknown PNG chunk's type), which can be empty or binary.
std::string decode_failure(const char* why, const std::string& bytes) {
  std::string r;
  for (const char* c = why ? why : ""; *c; ++c) r += (*c >= 0x20 && *c < 0x7f) ? *c : '?';
  const std::string fmt = image_format(bytes);
  auto starts = [&](const char* m, size_t n) {
    return bytes.size() >= n && bytes.compare(0, n, m, n) == 0;
  };
  if (r == "unknown image type" || (r.empty() && fmt.empty())) {
    std::string s =
        "not an image format Anvil reads (PNG, JPEG, BMP, GIF, TGA, PSD, HDR, PIC, PNM)";
    if (starts("RIFF", 4)) s += "; it looks like WebP: convert it to PNG";
    if (starts("II*\0", 4) || starts("MM\0*", 4)) s += "; it looks like TIFF: convert it to PNG";
    return s;
  }
  if (r.empty() || r.find_first_not_of("? ") == std::string::npos ||
      r.find("PNG chunk not known") != std::string::npos)
    r = fmt == "PNG" ? "an unknown or damaged chunk" : "the decoder gives no reason";
  return (fmt.empty() ? "" : "corrupt " + fmt + " file: ") + r;
}

}  // namespace

Tensor load_image(const std::string& path, const ImagePreprocess& pre) {
  // Check the options before decoding anything.
  if (pre.channels != 0 && pre.channels != 1 && pre.channels != 3)
    throw Error("channels must be 0 (keep), 1 or 3, got " + std::to_string(pre.channels), path, "",
                "channels");
  if (pre.width < 0 || pre.height < 0 || ((pre.width > 0) != (pre.height > 0)))
    throw Error("resize needs both width and height > 0 (or both 0 to keep the size), got " +
                    std::to_string(pre.width) + "x" + std::to_string(pre.height),
                path, "", "size");
  if (static_cast<int64_t>(pre.width) * pre.height > (int64_t{1} << 28))
    throw Error("resize target " + std::to_string(pre.width) + "x" + std::to_string(pre.height) +
                    " is too large",
                path, "", "size");
  if (!(pre.divide != 0.0f) || !std::isfinite(pre.divide))
    throw Error("divide must be a finite non-zero number, got " + fmt_float(pre.divide), path, "",
                "divide");

  const std::string bytes = read_file(path, "an image", uint64_t{1} << 30);
  if (bytes.size() > static_cast<size_t>(INT_MAX))
    throw Error("image file too large (" + std::to_string(bytes.size()) + " bytes)", path);
  int w = 0, h = 0, n = 0;
  // The header's size, before decoding: stb_image allocates what the header claims (a BMP
  // saying 60000x60000 would take 10 GB before its pixels are found missing).
  if (stbi_info_from_memory(reinterpret_cast<const stbi_uc*>(bytes.data()),
                            static_cast<int>(bytes.size()), &w, &h, &n) &&
      static_cast<int64_t>(w) * h > kMaxImagePixels)
    throw Error("the image header claims " + std::to_string(w) + "x" + std::to_string(h) +
                    " pixels, more than the limit of " + std::to_string(kMaxImagePixels) +
                    " (8192x8192)",
                path);
  unsigned char* px = stbi_load_from_memory(reinterpret_cast<const stbi_uc*>(bytes.data()),
                                            static_cast<int>(bytes.size()), &w, &h, &n, 0);
  if (!px) {
    throw Error("cannot decode the image: " + decode_failure(stbi_failure_reason(), bytes), path);
  }
  std::unique_ptr<unsigned char, void (*)(void*)> guard(px, stbi_image_free);
  if (w <= 0 || h <= 0 || n < 1 || n > 4)
    throw Error("decoder returned an invalid image (" + std::to_string(w) + "x" +
                    std::to_string(h) + "x" + std::to_string(n) + ")",
                path);

  // 1. Channels: file grey (+alpha) or RGB(+alpha) -> C channels, as float 0..255, HWC.
  const int file_c = n <= 2 ? 1 : 3;
  const int C = pre.channels ? pre.channels : file_c;
  const size_t npix = static_cast<size_t>(w) * static_cast<size_t>(h);
  std::vector<float> img(npix * static_cast<size_t>(C));
  for (size_t p = 0; p < npix; ++p) {
    const unsigned char* s = px + p * static_cast<size_t>(n);
    float* d = img.data() + p * static_cast<size_t>(C);
    if (file_c == 1) {
      for (int c = 0; c < C; ++c) d[c] = s[0];  // grey, or grey replicated to RGB
    } else if (C == 3) {
      d[0] = s[0];
      d[1] = s[1];
      d[2] = s[2];
    } else {  // RGB -> grey, ITU-R BT.601 luma
      d[0] = static_cast<float>(0.299 * s[0] + 0.587 * s[1] + 0.114 * s[2]);
    }
  }
  guard.reset();

  // 2. Resize: a triangle filter (bilinear when enlarging, widened to cover every input pixel
  // when shrinking, like PIL's BILINEAR), pixel centres at +0.5, clamped edges (resample.h).
  int H = h, W = w;
  if (pre.width > 0 && (pre.width != w || pre.height != h)) {
    W = pre.width;
    H = pre.height;
    img = resize_hwc(img, w, h, C, W, H);
  }

  // 3. Normalisation constants (indexed by output channel, i.e. after the BGR reorder).
  auto per_channel = [&](const std::vector<float>& v, float dflt, const char* field) {
    std::vector<float> r(static_cast<size_t>(C), dflt);
    if (v.size() == 1) {
      std::fill(r.begin(), r.end(), v[0]);
    } else if (v.size() == static_cast<size_t>(C)) {
      r = v;
    } else if (!v.empty()) {
      throw Error("expected 1 or " + std::to_string(C) + " values (one per channel), got " +
                      std::to_string(v.size()),
                  path, "", field);
    }
    return r;
  };
  const std::vector<float> mean = per_channel(pre.mean, 0.0f, "mean");
  const std::vector<float> scale = per_channel(pre.scale, 1.0f, "scale");

  // 4. BGR reorder, normalisation and layout.
  Tensor t(DType::f32, pre.nchw ? Shape{1, C, H, W} : Shape{1, H, W, C});
  float* dst = t.data<float>();
  const size_t plane = static_cast<size_t>(H) * static_cast<size_t>(W);
  for (size_t p = 0; p < plane; ++p) {
    for (int c = 0; c < C; ++c) {
      const int from = (pre.bgr && C == 3) ? 2 - c : c;
      float v = img[p * static_cast<size_t>(C) + static_cast<size_t>(from)];
      v = v / pre.divide;
      v = (v - mean[static_cast<size_t>(c)]) * scale[static_cast<size_t>(c)];
      if (pre.nchw)
        dst[static_cast<size_t>(c) * plane + p] = v;
      else
        dst[p * static_cast<size_t>(C) + static_cast<size_t>(c)] = v;
    }
  }
  return t;
}

}  // namespace anvil
