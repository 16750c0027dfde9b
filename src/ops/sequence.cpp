// Reference kernels around sequence models: ReverseSequence, Trilu and Einsum (ONNX semantics).
// Einsum takes every form of the ONNX spec: explicit (`->`) and implicit output, repeated
// labels (diagonals, traces), `...` with numpy broadcasting of the ellipsis dims; it sums in
// double over every label left out of the output.
#include <algorithm>
#include <array>
#include <cctype>
#include <string>
#include <vector>

#include "anvil/ops.h"
#include "ops/nn_util.h"
#include "ops/ref_util.h"

namespace anvil {
namespace {

using nn::fail;

// ---- ReverseSequence -----------------------------------------------------------------------

struct RevSeqAxes {
  int batch = 1, time = 0;
};

RevSeqAxes revseq_axes(const Attributes& a, const Shape& x, const Shape& lens) {
  RevSeqAxes r;
  const int64_t b = a.get_int("batch_axis", 1), t = a.get_int("time_axis", 0);
  if (x.size() < 2)
    fail("ReverseSequence", "input", "expected rank >= 2, found shape " + shape_str(x));
  if (b != 0 && b != 1)
    fail("ReverseSequence", "batch_axis", "expected 0 or 1, found " + std::to_string(b));
  if (t != 0 && t != 1)
    fail("ReverseSequence", "time_axis", "expected 0 or 1, found " + std::to_string(t));
  if (b == t)
    fail("ReverseSequence", "time_axis", "batch_axis and time_axis are both " + std::to_string(b));
  r.batch = static_cast<int>(b);
  r.time = static_cast<int>(t);
  if (lens.size() != 1 || lens[0] != x[static_cast<size_t>(r.batch)])
    fail("ReverseSequence", "sequence_lens",
         "expected shape [" + std::to_string(x[static_cast<size_t>(r.batch)]) +
             "] (the batch size), found " + shape_str(lens));
  return r;
}

void revseq_infer(InferContext& ctx) {
  if (!is_integer(ctx.dtype(1)))
    ctx.fail("sequence_lens",
             std::string("expected an integer tensor, found ") + dtype_name(ctx.dtype(1)));
  revseq_axes(ctx.attrs(), ctx.shape(0), ctx.shape(1));
  ctx.set_output(0, ctx.dtype(0), ctx.shape(0));
}

void revseq_kernel(KernelContext& ctx) {
  const Tensor& x = ref::input(ctx, 0, "input");
  const Tensor& l = ref::input(ctx, 1, "sequence_lens");
  const RevSeqAxes ax = revseq_axes(ctx.attrs(), x.shape(), l.shape());
  Tensor& y = ref::output(ctx, 0, x.dtype(), x.shape());
  const std::vector<int64_t> lens = ref::int_values(ctx, l, "sequence_lens");
  const Shape& s = x.shape();
  const int64_t T = s[static_cast<size_t>(ax.time)], Bn = s[static_cast<size_t>(ax.batch)];
  int64_t inner = 1;
  for (size_t i = 2; i < s.size(); ++i) inner *= s[i];
  const size_t es = dtype_size(x.dtype());
  for (int64_t b = 0; b < Bn; ++b) {
    const int64_t L = lens[static_cast<size_t>(b)];
    if (L < 0 || L > T)
      ctx.fail("sequence_lens", "sequence_lens[" + std::to_string(b) + "] = " + std::to_string(L) +
                                    " is outside [0, " + std::to_string(T) + "]");
    for (int64_t t = 0; t < T; ++t) {
      const int64_t src_t = t < L ? L - 1 - t : t;
      auto off = [&](int64_t tt) { return (ax.time == 0 ? tt * Bn + b : b * T + tt) * inner; };
      std::memcpy(ref::bytes(y) + static_cast<size_t>(off(t)) * es,
                  ref::bytes(x) + static_cast<size_t>(off(src_t)) * es,
                  static_cast<size_t>(inner) * es);
    }
  }
}

const OpRegistrar reg_revseq{
    OpDef{"ReverseSequence",
          "sequence",
          "reverses the first sequence_lens[b] elements along time_axis of every batch item b",
          2,
          2,
          1,
          1,
          {{"batch_axis", AttrType::Int, "0 or 1 (default 1)"},
           {"time_axis", AttrType::Int, "0 or 1 (default 0)"}},
          revseq_infer,
          revseq_kernel}};

// ---- Trilu ---------------------------------------------------------------------------------

void trilu_infer(InferContext& ctx) {
  if (ctx.rank(0) < 2)
    ctx.fail("input", "expected rank >= 2, found shape " + shape_str(ctx.shape(0)));
  if (ctx.has_input(1) && (!is_integer(ctx.dtype(1)) || shape_numel(ctx.shape(1)) != 1))
    ctx.fail("k", "expected one integer, found " + std::string(dtype_name(ctx.dtype(1))) +
                      shape_str(ctx.shape(1)));
  ctx.set_output(0, ctx.dtype(0), ctx.shape(0));
}

void trilu_kernel(KernelContext& ctx) {
  const Tensor& x = ref::input(ctx, 0, "input");
  Tensor& y = ref::output(ctx, 0, x.dtype(), x.shape());
  int64_t k = 0;
  if (ref::has_input(ctx, 1)) {
    const std::vector<int64_t> kv = ref::int_values(ctx, ref::input(ctx, 1, "k"), "k");
    if (kv.size() != 1) ctx.fail("k", "expected one value, found " + std::to_string(kv.size()));
    k = kv[0];
  }
  const bool upper = ctx.attrs().get_int("upper", 1) != 0;
  const int64_t rows = x.shape()[x.shape().size() - 2], cols = x.shape().back();
  const int64_t n = x.numel();
  std::memset(ref::bytes(y), 0, x.nbytes());
  for (int64_t e = 0; e < n; ++e) {
    const int64_t j = e % cols, i = (e / cols) % rows;
    if (upper ? j - i >= k : j - i <= k) ref::copy_elem(y, e, x, e);
  }
}

const OpRegistrar reg_trilu{OpDef{
    "Trilu",
    "shape",
    "upper (upper=1: j - i >= k) or lower (upper=0: j - i <= k) triangle of the last two dims, "
    "the rest 0; k an optional integer input (default 0)",
    1,
    2,
    1,
    1,
    {{"upper", AttrType::Int, "1 (default): upper triangle; 0: lower"}},
    trilu_infer,
    trilu_kernel}};

// ---- Einsum ---------------------------------------------------------------------------------

constexpr int kLetters = 52;  // label ids: a-z 0..25, A-Z 26..51, ellipsis dims 52..

struct EinsumPlan {
  std::vector<std::vector<int>> in_labels;  // per operand, per dim
  std::vector<int> out_labels;
  std::vector<int> sum_labels;
  std::vector<int64_t> size;  // per label id
  Shape out_shape;
};

int letter_id(char c) { return c >= 'a' && c <= 'z' ? c - 'a' : c - 'A' + 26; }

// One term: its letters before and after "..." (has_ell says whether it has one).
struct Term {
  std::vector<int> pre, post;
  bool has_ell = false;
};

Term parse_term(const std::string& t, const std::string& eq) {
  Term r;
  for (size_t i = 0; i < t.size();) {
    if (t.compare(i, 3, "...") == 0) {
      if (r.has_ell) fail("Einsum", "equation", "two ellipses in one term of '" + eq + "'");
      r.has_ell = true;
      i += 3;
      continue;
    }
    const char c = t[i];
    if (!std::isalpha(static_cast<unsigned char>(c)))
      fail("Einsum", "equation", std::string("unexpected character '") + c + "' in '" + eq + "'");
    (r.has_ell ? r.post : r.pre).push_back(letter_id(c));
    ++i;
  }
  return r;
}

EinsumPlan plan_einsum(const std::string& eq_in, const std::vector<Shape>& shapes) {
  std::string eq;
  for (char c : eq_in)
    if (!std::isspace(static_cast<unsigned char>(c))) eq += c;
  const size_t arrow = eq.find("->");
  const std::string lhs = eq.substr(0, arrow);
  std::vector<std::string> terms;
  for (size_t p = 0;;) {
    const size_t q = lhs.find(',', p);
    terms.push_back(lhs.substr(p, q == std::string::npos ? std::string::npos : q - p));
    if (q == std::string::npos) break;
    p = q + 1;
  }
  if (terms.size() != shapes.size())
    fail("Einsum", "equation",
         "'" + eq_in + "' has " + std::to_string(terms.size()) + " input terms, the node has " +
             std::to_string(shapes.size()) + " inputs");
  std::vector<Term> parsed;
  int ell = 0;
  for (size_t k = 0; k < terms.size(); ++k) {
    Term t = parse_term(terms[k], eq_in);
    const int nl = static_cast<int>(t.pre.size() + t.post.size());
    const int r = static_cast<int>(shapes[k].size());
    if (t.has_ell ? r < nl : r != nl)
      fail("Einsum", "equation",
           "term '" + terms[k] + "' of '" + eq_in + "' does not fit input " + std::to_string(k) +
               " of shape " + shape_str(shapes[k]));
    if (t.has_ell) ell = std::max(ell, r - nl);
    parsed.push_back(t);
  }
  EinsumPlan p;
  p.size.assign(static_cast<size_t>(kLetters + ell), -1);
  std::vector<int> count(static_cast<size_t>(kLetters + ell), 0);
  for (size_t k = 0; k < parsed.size(); ++k) {
    const Term& t = parsed[k];
    std::vector<int> labels = t.pre;
    if (t.has_ell) {
      const int e = static_cast<int>(shapes[k].size() - t.pre.size() - t.post.size());
      for (int i = ell - e; i < ell; ++i) labels.push_back(kLetters + i);
    }
    labels.insert(labels.end(), t.post.begin(), t.post.end());
    for (size_t d = 0; d < labels.size(); ++d) {
      const int l = labels[d];
      const int64_t n = shapes[k][d];
      int64_t& s = p.size[static_cast<size_t>(l)];
      ++count[static_cast<size_t>(l)];
      if (s < 0 || (l >= kLetters && s == 1)) {
        s = n;
      } else if (s != n && !(l >= kLetters && n == 1)) {
        fail("Einsum", "equation",
             "dimension " + std::to_string(d) + " of input " + std::to_string(k) + " (" +
                 std::to_string(n) + ") does not match " + std::to_string(s) + " in '" + eq_in +
                 "'");
      }
    }
    p.in_labels.push_back(labels);
  }
  std::vector<bool> in_out(p.size.size(), false);
  if (arrow != std::string::npos) {
    const Term o = parse_term(eq.substr(arrow + 2), eq_in);
    std::vector<int> labels = o.pre;
    if (o.has_ell)
      for (int i = 0; i < ell; ++i) labels.push_back(kLetters + i);
    labels.insert(labels.end(), o.post.begin(), o.post.end());
    if (!o.has_ell && ell > 0)
      fail("Einsum", "equation", "the output of '" + eq_in + "' drops the ellipsis dims");
    for (int l : labels) {
      if (p.size[static_cast<size_t>(l)] < 0)
        fail("Einsum", "equation", "an output label of '" + eq_in + "' is in no input");
      if (in_out[static_cast<size_t>(l)])
        fail("Einsum", "equation", "an output label of '" + eq_in + "' is repeated");
      in_out[static_cast<size_t>(l)] = true;
    }
    p.out_labels = labels;
  } else {  // implicit: ellipsis dims, then the letters used once, in ASCII order
    for (int i = 0; i < ell; ++i) p.out_labels.push_back(kLetters + i);
    std::string once;
    for (int l = 0; l < kLetters; ++l)
      if (count[static_cast<size_t>(l)] == 1)
        once += static_cast<char>(l < 26 ? 'a' + l : 'A' + (l - 26));
    std::sort(once.begin(), once.end());
    for (char c : once) p.out_labels.push_back(letter_id(c));
    for (int l : p.out_labels) in_out[static_cast<size_t>(l)] = true;
  }
  for (size_t l = 0; l < p.size.size(); ++l)
    if (p.size[l] >= 0 && !in_out[l]) p.sum_labels.push_back(static_cast<int>(l));
  for (int l : p.out_labels) p.out_shape.push_back(p.size[static_cast<size_t>(l)]);
  return p;
}

void einsum_infer(InferContext& ctx) {
  std::vector<Shape> shapes;
  for (int i = 0; i < ctx.num_inputs(); ++i) {
    if (ctx.dtype(i) == DType::boolean || ctx.dtype(i) != ctx.dtype(0))
      ctx.fail("Inputs", std::string("expected numeric inputs of one dtype, input ") +
                             std::to_string(i) + " is " + dtype_name(ctx.dtype(i)));
    shapes.push_back(ctx.shape(i));
  }
  const EinsumPlan p = plan_einsum(ctx.attrs().get_string("equation"), shapes);
  ctx.set_output(0, ctx.dtype(0), p.out_shape);
}

void einsum_kernel(KernelContext& ctx) {
  std::vector<Shape> shapes;
  std::vector<std::vector<double>> data;
  for (size_t i = 0; i < ctx.inputs.size(); ++i) {
    const Tensor& t = ref::input(ctx, static_cast<int>(i), "Inputs");
    shapes.push_back(t.shape());
    data.push_back(t.to_doubles());
  }
  const EinsumPlan p = plan_einsum(ctx.attrs().get_string("equation"), shapes);
  Tensor& y = ref::output(ctx, 0, ctx.inputs[0].dtype(), p.out_shape);
  // Per operand and label: the stride that label's index moves (0 where broadcast).
  const size_t nl = p.size.size();
  std::vector<std::vector<int64_t>> stride(data.size(), std::vector<int64_t>(nl, 0));
  for (size_t k = 0; k < data.size(); ++k) {
    const auto st = nn::strides_of(shapes[k]);
    for (size_t d = 0; d < shapes[k].size(); ++d)
      if (shapes[k][d] != 1 || p.size[static_cast<size_t>(p.in_labels[k][d])] == 1)
        stride[k][static_cast<size_t>(p.in_labels[k][d])] += st[d];
  }
  std::vector<int64_t> idx(nl, 0);
  const int64_t nout = shape_numel(p.out_shape);
  int64_t nsum = 1;
  for (int l : p.sum_labels) nsum *= p.size[static_cast<size_t>(l)];
  for (int64_t o = 0; o < nout; ++o) {
    int64_t r = o;
    for (size_t i = p.out_labels.size(); i-- > 0;) {
      const int l = p.out_labels[i];
      idx[static_cast<size_t>(l)] = r % p.size[static_cast<size_t>(l)];
      r /= p.size[static_cast<size_t>(l)];
    }
    double acc = 0;
    for (int64_t s = 0; s < nsum; ++s) {
      int64_t q = s;
      for (size_t i = p.sum_labels.size(); i-- > 0;) {
        const int l = p.sum_labels[i];
        idx[static_cast<size_t>(l)] = q % p.size[static_cast<size_t>(l)];
        q /= p.size[static_cast<size_t>(l)];
      }
      double prod = 1;
      for (size_t k = 0; k < data.size(); ++k) {
        int64_t off = 0;
        for (size_t l = 0; l < nl; ++l) off += idx[l] * stride[k][l];
        prod *= data[k][static_cast<size_t>(off)];
      }
      acc += prod;
    }
    y.set(o, acc);
  }
}

const OpRegistrar reg_einsum{OpDef{
    "Einsum",
    "matmul",
    "Einstein summation (numpy einsum): explicit or implicit output, repeated labels, ellipsis "
    "broadcasting; sums in double",
    1,
    -1,
    1,
    1,
    {{"equation", AttrType::String, "e.g. \"bij,bjk->bik\""}},
    einsum_infer,
    einsum_kernel}};

}  // namespace
}  // namespace anvil
