// Max and min pooling over non-overlapping windows (stride == window, no dilation) for
// XLA:CPU through the XLA FFI, channels-last float32, 1-d, 2-d and 3-d, split over XLA's
// own intra-op thread pool.
//
// JaxcnnPoolArgExtreme: x (N, *spatial, C) -> y (N, *out, C) and, for each output element,
// the row-major offset inside its window of the window's *first* extreme element (int32;
// -1 where the window holds a NaN, whose y is NaN). Positions in the low padding or past
// the input count as the identity (-inf for max, +inf for min) and can be that first
// element; the gradient sent there is dropped, as lax's select_and_scatter does.
// JaxcnnPoolScatter: dy (N, *out, C) and those offsets -> dx (N, *spatial, C): each dy
// element goes to its window's chosen element, every other element of dx is zero.
//
// Both equal jaxcnn's lax formulation (jaxcnn/ops/_pool_passes.py) bit for bit, except that
// a window holding a NaN always gives NaN here (as PyTorch's max pooling does), where XLA's
// vectorised max and min reductions may skip it.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "parallel.h"
#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace {

using jaxcnn::ParallelFor;

// Geometry as 3-d: 1-d and 2-d get leading spatial sizes of 1.
struct Geometry {
  int64_t n = 0, c = 0;
  int64_t in[3] = {1, 1, 1}, out[3] = {1, 1, 1}, k[3] = {1, 1, 1}, lo[3] = {0, 0, 0};
};

bool MakeGeometry(ffi::Span<const int64_t> x, ffi::Span<const int64_t> y,
                  ffi::Span<const int64_t> window, ffi::Span<const int64_t> pad_lo,
                  Geometry* g) {
  const size_t s = window.size();
  if (s < 1 || s > 3 || x.size() != s + 2 || y.size() != s + 2 || pad_lo.size() != s ||
      x[0] != y[0] || x[s + 1] != y[s + 1]) {
    return false;
  }
  g->n = x[0];
  g->c = x[s + 1];
  for (size_t i = 0; i < s; ++i) {
    const size_t j = 3 - s + i;
    g->in[j] = x[i + 1];
    g->out[j] = y[i + 1];
    g->k[j] = window[i];
    g->lo[j] = pad_lo[i];
    if (window[i] < 1) return false;
  }
  return true;
}

// The kernels go one output row (b, od, oh) at a time, in two stages, so that the inner
// loops run over whole rows whatever the channel count: (1) the window's input rows
// (kd, kh) are reduced element by element into one row of W * C running extremes and the
// first (kd, kh) reaching each; (2) each output element reduces its kW columns of that
// row. The first extreme in row-major window order is the one with the smallest offset
// p = (kd * kH + kh) * kW + kw among the equal extremes, which stage 2 takes from the
// first rows stage 1 kept.

int64_t InputRow(const Geometry& g, int64_t b, int64_t d, int64_t h) {
  return ((b * g.in[0] + d) * g.in[1] + h) * g.in[2] * g.c;
}

template <bool kLargest>
void ArgExtreme(const Geometry& g, const float* x, float* y, int32_t* idx, int64_t b0,
                int64_t b1) {
  const float identity = kLargest ? -std::numeric_limits<float>::infinity()
                                  : std::numeric_limits<float>::infinity();
  const int64_t c = g.c, row = g.in[2] * c, kw_size = g.k[2];
  std::vector<float> best_row(row);
  std::vector<int32_t> first_row(row);
  for (int64_t b = b0; b < b1; ++b)
    for (int64_t od = 0; od < g.out[0]; ++od)
      for (int64_t oh = 0; oh < g.out[1]; ++oh) {
        // Stage 1. A NaN sticks in `best` (nothing compares beyond it).
        const float* best = nullptr;  // the row of running extremes
        const int32_t* first = first_row.data();
        bool started = false;
        for (int64_t kd = 0; kd < g.k[0]; ++kd) {
          const int64_t d = od * g.k[0] + kd - g.lo[0];
          for (int64_t kh = 0; kh < g.k[1]; ++kh) {
            const int64_t h = oh * g.k[1] + kh - g.lo[1];
            const int32_t dh = static_cast<int32_t>(kd * g.k[1] + kh);
            const bool inside = d >= 0 && d < g.in[0] && h >= 0 && h < g.in[1];
            const float* v = inside ? x + InputRow(g, b, d, h) : nullptr;
            if (!started && (dh > 0 || !inside)) {  // an earlier padding row: the identity
              std::fill(best_row.begin(), best_row.end(), identity);
              std::fill(first_row.begin(), first_row.end(), 0);
              best = best_row.data();
              started = true;
            }
            if (!inside) continue;
            if (!started) {  // the window's first row: read in place, offsets 0
              best = v;
              std::fill(first_row.begin(), first_row.end(), 0);
              started = true;
              continue;
            }
            float* bp = best_row.data();  // may be `best` itself: element i reads before writes
            int32_t* __restrict fp = first_row.data();
            const float* ep = best;
            for (int64_t i = 0; i < row; ++i) {  // branch-free, so it vectorizes
              const float a = v[i], e = ep[i];
              const int32_t beyond = -static_cast<int32_t>(kLargest ? a > e : a < e);
              bp[i] = a != a ? a : beyond ? a : e;
              fp[i] = (fp[i] & ~beyond) | (dh & beyond);
            }
            best = bp;
          }
        }
        // Stage 2: the kW columns of each output element; ties go to the smaller offset.
        const int64_t o = ((b * g.out[0] + od) * g.out[1] + oh) * g.out[2] * c;
        for (int64_t ow = 0; ow < g.out[2]; ++ow) {
          float* __restrict yo = y + o + ow * c;
          int32_t* __restrict io = idx + o + ow * c;
          for (int64_t i = 0; i < c; ++i) {
            yo[i] = identity;
            io[i] = 0;
          }
          for (int64_t kw = 0; kw < kw_size; ++kw) {
            const int64_t w = ow * kw_size + kw - g.lo[2];
            if (w < 0 || w >= g.in[2]) continue;  // the identity: never beyond, offset larger
            const float* __restrict bp = best + w * c;
            const int32_t* __restrict fp = first + w * c;
            const int32_t k = static_cast<int32_t>(kw), ks = static_cast<int32_t>(kw_size);
            for (int64_t i = 0; i < c; ++i) {
              const float a = bp[i], e = yo[i];
              const int32_t p = fp[i] * ks + k;
              const int32_t take = -static_cast<int32_t>(
                  (kLargest ? a > e : a < e) | ((a == e) & (p < io[i])));
              yo[i] = a != a ? a : take ? a : e;
              io[i] = (io[i] & ~take) | (p & take);
            }
          }
          for (int64_t i = 0; i < c; ++i) io[i] = yo[i] != yo[i] ? -1 : io[i];
        }
      }
}

// Every input element some window covers gets dy or zero from its window; elements no
// window covers (a cut tail) are zeroed first.
void Scatter(const Geometry& g, const float* dy, const int32_t* idx, float* dx, int64_t b0,
             int64_t b1) {
  const int64_t c = g.c, kw_size = g.k[2];
  bool covered = true;
  for (int a = 0; a < 3; ++a) covered &= g.out[a] * g.k[a] - g.lo[a] >= g.in[a];
  if (!covered) {
    const int64_t plane = g.in[0] * g.in[1] * g.in[2] * c;
    std::memset(dx + b0 * plane, 0, sizeof(float) * (b1 - b0) * plane);
  }
  for (int64_t b = b0; b < b1; ++b)
    for (int64_t od = 0; od < g.out[0]; ++od)
      for (int64_t oh = 0; oh < g.out[1]; ++oh) {
        const int64_t o = ((b * g.out[0] + od) * g.out[1] + oh) * g.out[2] * c;
        for (int64_t kd = 0; kd < g.k[0]; ++kd) {
          const int64_t d = od * g.k[0] + kd - g.lo[0];
          for (int64_t kh = 0; kh < g.k[1]; ++kh) {
            const int64_t h = oh * g.k[1] + kh - g.lo[1];
            if (d < 0 || d >= g.in[0] || h < 0 || h >= g.in[1]) continue;  // dropped
            float* dst = dx + InputRow(g, b, d, h);
            const int32_t dh = static_cast<int32_t>(kd * g.k[1] + kh);
            for (int64_t ow = 0; ow < g.out[2]; ++ow)
              for (int64_t kw = 0; kw < kw_size; ++kw) {
                const int64_t w = ow * kw_size + kw - g.lo[2];
                if (w < 0 || w >= g.in[2]) continue;  // dropped
                const int32_t p = dh * static_cast<int32_t>(kw_size) + static_cast<int32_t>(kw);
                const float* __restrict gy = dy + o + ow * c;
                const int32_t* __restrict chosen = idx + o + ow * c;
                float* __restrict out = dst + w * c;
                for (int64_t i = 0; i < c; ++i) {
                  const float v = gy[i];
                  out[i] = chosen[i] == p ? v : 0.0f;
                }
              }
          }
        }
      }
}

// Batch items per piece: at least ~16k elements of x, so a piece outweighs its scheduling.
int64_t Grain(const Geometry& g) {
  const int64_t per_item = std::max<int64_t>(1, g.in[0] * g.in[1] * g.in[2] * g.c);
  return std::max<int64_t>(1, (1 << 14) / per_item);
}

ffi::Error ArgExtremeImpl(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> x,
                          ffi::ResultBuffer<ffi::F32> y, ffi::ResultBuffer<ffi::S32> idx,
                          ffi::Span<const int64_t> window, ffi::Span<const int64_t> pad_lo,
                          int64_t largest) {
  Geometry g;
  if (!MakeGeometry(x.dimensions(), y->dimensions(), window, pad_lo, &g)) {
    return ffi::Error(ffi::ErrorCode::kInvalidArgument, "pool: inconsistent shapes");
  }
  const float* xp = x.typed_data();
  float* yp = y->typed_data();
  int32_t* ip = idx->typed_data();
  ParallelFor(pool, g.n, Grain(g), [&](int64_t b0, int64_t b1) {
    if (largest) {
      ArgExtreme<true>(g, xp, yp, ip, b0, b1);
    } else {
      ArgExtreme<false>(g, xp, yp, ip, b0, b1);
    }
  });
  return ffi::Error::Success();
}

ffi::Error ScatterImpl(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> dy, ffi::Buffer<ffi::S32> idx,
                       ffi::ResultBuffer<ffi::F32> dx, ffi::Span<const int64_t> window,
                       ffi::Span<const int64_t> pad_lo) {
  Geometry g;
  if (!MakeGeometry(dx->dimensions(), dy.dimensions(), window, pad_lo, &g)) {
    return ffi::Error(ffi::ErrorCode::kInvalidArgument, "pool: inconsistent shapes");
  }
  const float* gp = dy.typed_data();
  const int32_t* ip = idx.typed_data();
  float* dp = dx->typed_data();
  ParallelFor(pool, g.n, Grain(g), [&](int64_t b0, int64_t b1) {
    Scatter(g, gp, ip, dp, b0, b1);
  });
  return ffi::Error::Success();
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(JaxcnnPoolArgExtreme, ArgExtremeImpl,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::S32>>()
                                  .Attr<ffi::Span<const int64_t>>("window")
                                  .Attr<ffi::Span<const int64_t>>("pad_lo")
                                  .Attr<int64_t>("largest"));

XLA_FFI_DEFINE_HANDLER_SYMBOL(JaxcnnPoolScatter, ScatterImpl,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::S32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Attr<ffi::Span<const int64_t>>("window")
                                  .Attr<ffi::Span<const int64_t>>("pad_lo"));
