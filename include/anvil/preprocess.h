// Preprocessing beyond anvil/image.h: Caffe mean files and per-pixel mean subtraction.
#pragma once

#include <string>
#include <vector>

#include "anvil/tensor.h"

namespace anvil {

/// Reads a Caffe mean file (a binary BlobProto, ".binaryproto") as a float32 tensor of shape
/// (C, H, W): a 4-D blob must have num 1 (dropped), a 3-D blob is taken as is. Legacy
/// num/channels/height/width fields and the `shape` field are both understood; float `data`
/// or `double_data`. Throws anvil::Error naming the file on a corrupt file, a wrong rank or
/// a data size that does not match the shape.
Tensor read_caffe_mean(const std::string& path);

/// Caffe's transform with a mean image: v = (v - mean[c, y + oy, x + ox]) * scale[c] for an
/// image tensor (1, C, H, W) (`nchw`) or (1, H, W, C). `mean` is (C', H', W') or (1, C', H',
/// W') with C' == C or C' == 1 (broadcast over channels); when H' > H or W' > W the mean is
/// center-cropped (oy = (H' - H) / 2, ox = (W' - W) / 2, Caffe's TEST-phase crop offsets);
/// a mean smaller than the image throws anvil::Error (field "mean-file"). `scale` is empty
/// (1), one value or one per channel. Returns a float32 tensor of the image's shape.
Tensor subtract_mean_image(const Tensor& image, const Tensor& mean,
                           const std::vector<float>& scale = {}, bool nchw = true);

}  // namespace anvil
