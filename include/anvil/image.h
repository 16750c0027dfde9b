// Image files (PNG, JPEG, BMP, ...) into input tensors, with the preprocessing users need.
#pragma once

#include <string>
#include <vector>

#include "anvil/tensor.h"

namespace anvil {

struct ImagePreprocess {
  /// Resize to this size when both > 0 (both or neither): a separable triangle (bilinear)
  /// filter, pixel centres at +0.5, clamped edges; widened to w / width (h / height) input
  /// pixels when shrinking (antialiased, like PIL's BILINEAR and stb_image_resize's TRIANGLE).
  /// Applied to the float values (not rounded), after the channel conversion.
  int width = 0, height = 0;
  int channels = 0;  // 0 = keep the file's (1 or 3; alpha dropped), or force 1 / 3
                     // (grey -> RGB replicates; RGB -> grey is BT.601 luma
                     //  0.299 R + 0.587 G + 0.114 B, not rounded)
  bool bgr = false;  // reorder RGB -> BGR (Caffe, OpenCV-trained models)
  /// Applied in this order to each value v (0..255 from the file):
  ///   v = v / divide; v = (v - mean[c]) * scale[c]   (mean/scale: one value or one per channel)
  float divide = 1.0f;       // e.g. 255 for [0,1] inputs
  std::vector<float> mean;   // e.g. {103.939, 116.779, 123.68} (after bgr reorder)
  std::vector<float> scale;  // e.g. 1/std
  bool nchw = true;          // NCHW (Caffe, ONNX) or NHWC (Keras, TF)
};

/// Loads an image (PNG, JPEG, BMP and the other formats stb_image decodes; 16-bit
/// files are reduced to 8 bits; EXIF orientation is ignored) as a float32 tensor of shape
/// (1,C,H,W) or (1,H,W,C). Throws anvil::Error naming the file (and the option at fault).
Tensor load_image(const std::string& path, const ImagePreprocess& pre = {});

}  // namespace anvil
