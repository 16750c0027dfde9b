// anvil/preprocess.h: Caffe mean files (.binaryproto) and per-pixel mean subtraction.
#include <algorithm>
#include <cmath>
#include <string>

#include "anvil/error.h"
#include "anvil/preprocess.h"
#include "core/file_io.h"
#include "import/caffe/caffe_net.h"

namespace anvil {

Tensor read_caffe_mean(const std::string& path) {
  using namespace caffe_import;
  pb::BlobProto b;
  try {
    b = parse_binaryproto(read_file(path, "a Caffe mean file", uint64_t{1} << 31), path);
  } catch (const Error& e) {
    throw Error(e.message(), path, {}, "mean-file");
  }
  Shape s;
  if (b.has_shape()) {
    s.assign(b.shape().dim().begin(), b.shape().dim().end());
  } else if (b.has_num() || b.has_channels() || b.has_height() || b.has_width()) {
    s = {b.num(), b.channels(), b.height(), b.width()};
  }
  if (s.size() == 4) {
    if (s[0] != 1)
      throw Error("the mean blob has shape " + shape_str(s) + "; expected num 1 (1, C, H, W)", path,
                  {}, "mean-file");
    s.erase(s.begin());
  }
  if (s.size() != 3)
    throw Error("the mean blob has shape " + shape_str(s) + "; expected (C, H, W) or (1, C, H, W)",
                path, {}, "mean-file");
  for (int64_t d : s)
    if (d <= 0 || d > (int64_t{1} << 24))
      throw Error("the mean blob has an invalid shape " + shape_str(s), path, {}, "mean-file");
  const int64_t n = s[0] * s[1] * s[2];
  const bool dbl = b.data_size() == 0 && b.double_data_size() > 0;
  const int64_t have = dbl ? b.double_data_size() : b.data_size();
  if (have != n)
    throw Error("the mean blob has shape " + shape_str(s) + " (" + std::to_string(n) +
                    " values) but holds " + std::to_string(have) + " values",
                path, {}, "mean-file");
  Tensor t(DType::f32, s);
  for (int64_t i = 0; i < n; ++i) {
    const double v = dbl ? b.double_data(static_cast<int>(i)) : b.data(static_cast<int>(i));
    if (!std::isfinite(v))
      throw Error("the mean blob holds a non-finite value", path, {}, "mean-file");
    t.set(i, v);
  }
  return t;
}

Tensor subtract_mean_image(const Tensor& image, const Tensor& mean, const std::vector<float>& scale,
                           bool nchw) {
  if (image.rank() != 4 || image.dim(0) != 1)
    throw Error(
        "expected an image tensor (1, C, H, W) or (1, H, W, C), got " + shape_str(image.shape()),
        {}, {}, "mean-file");
  const int64_t C = nchw ? image.dim(1) : image.dim(3);
  const int64_t H = nchw ? image.dim(2) : image.dim(1);
  const int64_t W = nchw ? image.dim(3) : image.dim(2);
  Shape ms = mean.shape();
  if (ms.size() == 4 && ms[0] == 1) ms.erase(ms.begin());
  if (ms.size() != 3)
    throw Error("the mean has shape " + shape_str(mean.shape()) + "; expected (C, H, W)", {}, {},
                "mean-file");
  const int64_t MC = ms[0], MH = ms[1], MW = ms[2];
  if (MC != C && MC != 1)
    throw Error("the mean has " + std::to_string(MC) + " channels, the image " + std::to_string(C),
                {}, {}, "mean-file");
  if (MH < H || MW < W)
    throw Error("the mean is " + std::to_string(MW) + "x" + std::to_string(MH) +
                    " (WxH), smaller than the input's " + std::to_string(W) + "x" +
                    std::to_string(H) + "; it must be the input size or larger (center-cropped)",
                {}, {}, "mean-file");
  if (!scale.empty() && scale.size() != 1 && static_cast<int64_t>(scale.size()) != C)
    throw Error(
        "expected 1 or " + std::to_string(C) + " scale values, got " + std::to_string(scale.size()),
        {}, {}, "scale");
  const int64_t oy = (MH - H) / 2, ox = (MW - W) / 2;
  Tensor out(DType::f32, image.shape());
  for (int64_t c = 0; c < C; ++c) {
    const double sc = scale.empty() ? 1.0 : scale[scale.size() == 1 ? 0 : static_cast<size_t>(c)];
    const int64_t mc = MC == 1 ? 0 : c;
    for (int64_t y = 0; y < H; ++y)
      for (int64_t x = 0; x < W; ++x) {
        const int64_t i = nchw ? (c * H + y) * W + x : (y * W + x) * C + c;
        const double m = mean.get((mc * MH + y + oy) * MW + x + ox);
        out.set(i, (image.get(i) - m) * sc);
      }
  }
  return out;
}

}  // namespace anvil
