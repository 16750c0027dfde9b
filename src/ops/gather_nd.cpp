// Reference kernel for GatherND (ONNX opset 12 semantics, also TF's GatherNd with
// batch_dims = 0): indices [..., k] address slices data[i0, ..., ik-1, :]; negative indices
// count from the end; an index out of range is an error.
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "anvil/error.h"
#include "anvil/ops.h"
#include "ops/broadcast.h"
#include "ops/ref_util.h"

namespace anvil {
namespace {

using namespace ref;

template <class Ctx>
Shape gather_nd_shape(const Ctx& c, const Shape& ds, const Shape& is, int64_t b) {
  if (is.empty()) c.fail("indices", "must have rank >= 1");
  const int64_t k = is.back();
  if (b < 0 || b >= static_cast<int64_t>(is.size()) || b >= static_cast<int64_t>(ds.size()))
    c.fail("batch_dims", "out of range");
  for (int64_t i = 0; i < b; ++i)
    if (ds[static_cast<size_t>(i)] != is[static_cast<size_t>(i)])
      c.fail("indices", "batch dims of data and indices differ");
  if (k < 1 || b + k > static_cast<int64_t>(ds.size()))
    c.fail("indices", "last dim " + std::to_string(k) + " does not fit data of rank " +
                          std::to_string(ds.size()));
  Shape out(is.begin(), is.end() - 1);
  out.insert(out.end(), ds.begin() + b + k, ds.end());
  return out;
}

OpDef make_gather_nd() {
  OpDef d;
  d.name = "GatherND";
  d.category = "tensor";
  d.doc = "slices of data addressed by the last axis of indices (attr batch_dims)";
  d.min_inputs = d.max_inputs = 2;
  d.attrs = {{"batch_dims", AttrType::Int, "leading dims shared by data and indices (default 0)"}};
  d.infer = [](InferContext& c) {
    if (!is_integer(c.dtype(1))) c.fail("indices", "must be an integer tensor");
    c.set_output(0, c.dtype(0),
                 gather_nd_shape(c, c.shape(0), c.shape(1), c.attrs().get_int("batch_dims", 0)));
  };
  d.reference = [](KernelContext& c) {
    const Tensor& x = input(c, 0, "data");
    const Tensor& ind = input(c, 1, "indices");
    const int64_t b = c.attrs().get_int("batch_dims", 0);
    Shape os = gather_nd_shape(c, x.shape(), ind.shape(), b);
    Tensor& y = output(c, 0, x.dtype(), os);
    const int64_t k = ind.shape().back();
    const int64_t nb = prod(x.shape(), 0, static_cast<size_t>(b));
    const int64_t per_batch = ind.numel() / k / (nb ? nb : 1);
    const int64_t slice = prod(x.shape(), static_cast<size_t>(b + k), x.shape().size());
    const int64_t batch_stride = prod(x.shape(), static_cast<size_t>(b), x.shape().size());
    const auto st = strides_of(x.shape());
    const size_t es = dtype_size(x.dtype());
    for (int64_t bi = 0; bi < nb; ++bi)
      for (int64_t u = 0; u < per_batch; ++u) {
        const int64_t row = bi * per_batch + u;
        int64_t base = bi * batch_stride;
        for (int64_t a = 0; a < k; ++a) {
          const size_t dim_i = static_cast<size_t>(b + a);
          const int64_t dim = x.shape()[dim_i];
          int64_t j = load_int(ind, row * k + a);
          if (j < -dim || j >= dim)
            c.fail("indices", "index " + std::to_string(j) + " is out of range for dim " +
                                  std::to_string(dim_i) + " of size " + std::to_string(dim));
          if (j < 0) j += dim;
          base += j * st[dim_i];
        }
        if (slice)
          std::memcpy(bytes(y) + static_cast<size_t>(row * slice) * es,
                      bytes(x) + static_cast<size_t>(base) * es, static_cast<size_t>(slice) * es);
      }
  };
  return d;
}

const bool registered = [] {
  register_op(make_gather_nd());
  return true;
}();

}  // namespace
}  // namespace anvil
