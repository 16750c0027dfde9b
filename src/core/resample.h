// Separable antialiased image resampling (the resize step of load_image).
#pragma once

#include <vector>

namespace anvil {

/// Resizes an interleaved float image (h rows of w pixels of `channels` values, HWC) to
/// out_h x out_w with a triangle filter (PIL's BILINEAR, stb_image_resize's TRIANGLE):
///  - output pixel x (centre x + 0.5) maps to input coordinate u = (x + 0.5) * w / out_w;
///  - input pixel i (centre i + 0.5) weighs max(0, 1 - |i + 0.5 - u| / s) with the support
///    s = max(1, w / out_w): plain bilinear interpolation when enlarging, a filter widened to
///    cover every input pixel when shrinking (antialiased);
///  - pixels outside the image repeat the edge pixel (clamped edges);
///  - the weights of each output pixel are divided by their sum (a solid image stays solid).
/// Rows and columns are filtered separately (columns first); sums are accumulated in double.
/// Sizes must be >= 1. An axis whose size does not change is copied unfiltered.
std::vector<float> resize_hwc(const std::vector<float>& src, int w, int h, int channels, int out_w,
                              int out_h);

}  // namespace anvil
