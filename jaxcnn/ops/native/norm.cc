// Batch norm's per-channel sums for XLA:CPU through the XLA FFI: channels-last float32,
// any rank, read once and split over XLA's own intra-op thread pool. The elementwise
// passes (normalising, the input gradient) stay with XLA, which fuses them with their
// neighbours (ReLU, the residual add).
//
// JaxcnnNormMoments: x (..., C) -> mean (C,) and biased variance (C,). Each block of rows
// (cache-sized) is summed, then its squared deviations from its own mean are summed while
// it is still in cache; the blocks are merged in double (Chan, Golub & LeVeque), so the
// variance has the two-pass formula's accuracy from one pass over memory.
// JaxcnnNormDualSums: g, x (..., C) and mean (C,) -> sum(g) and sum(g * (x - mean)) per
// channel (the two sums of batch norm's gradient), blocks summed in float, merged in
// double.

#include <algorithm>
#include <cstdint>
#include <vector>

#include "parallel.h"
#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace {

using jaxcnn::ParallelFor;

// Rows per block: at most 256 (float sums stay accurate), about 16k elements otherwise.
int64_t BlockRows(int64_t c) {
  return std::clamp<int64_t>((1 << 14) / std::max<int64_t>(1, c), 1, 256);
}

bool Channels(ffi::Span<const int64_t> dims, int64_t* rows, int64_t* c) {
  if (dims.size() == 0) return false;
  *c = dims[dims.size() - 1];
  *rows = 1;
  for (size_t i = 0; i + 1 < dims.size(); ++i) *rows *= dims[i];
  return *c > 0 && *rows > 0;
}

ffi::Error MomentsImpl(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> x,
                       ffi::ResultBuffer<ffi::F32> mean, ffi::ResultBuffer<ffi::F32> var) {
  int64_t rows, c;
  if (!Channels(x.dimensions(), &rows, &c) || mean->element_count() != static_cast<size_t>(c) ||
      var->element_count() != static_cast<size_t>(c)) {
    return ffi::Error(ffi::ErrorCode::kInvalidArgument, "norm moments: inconsistent shapes");
  }
  const float* xp = x.typed_data();
  const int64_t block = BlockRows(c), blocks = (rows + block - 1) / block;
  std::vector<float> part_mean(blocks * c), part_m2(blocks * c);
  ParallelFor(pool, blocks, 1, [&](int64_t b0, int64_t b1) {
    std::vector<float> acc(c);
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t r0 = b * block, r1 = std::min(rows, r0 + block);
      float* __restrict m = part_mean.data() + b * c;
      float* __restrict s = part_m2.data() + b * c;
      std::fill(m, m + c, 0.0f);
      for (int64_t r = r0; r < r1; ++r) {
        const float* __restrict v = xp + r * c;
        for (int64_t i = 0; i < c; ++i) m[i] += v[i];
      }
      const float inv = 1.0f / static_cast<float>(r1 - r0);
      for (int64_t i = 0; i < c; ++i) m[i] *= inv;
      std::fill(s, s + c, 0.0f);
      for (int64_t r = r0; r < r1; ++r) {
        const float* __restrict v = xp + r * c;
        for (int64_t i = 0; i < c; ++i) {
          const float d = v[i] - m[i];
          s[i] += d * d;
        }
      }
    }
  });
  // Merge: mean = sum n_b m_b / n; M2 = sum M2_b + n_b (m_b - mean)^2.
  float* mp = mean->typed_data();
  float* vp = var->typed_data();
  std::vector<double> total(c, 0.0), m2(c, 0.0);
  for (int64_t b = 0; b < blocks; ++b) {
    const double nb = static_cast<double>(std::min(rows, (b + 1) * block) - b * block);
    for (int64_t i = 0; i < c; ++i) total[i] += nb * part_mean[b * c + i];
  }
  for (int64_t i = 0; i < c; ++i) total[i] /= static_cast<double>(rows);
  for (int64_t b = 0; b < blocks; ++b) {
    const double nb = static_cast<double>(std::min(rows, (b + 1) * block) - b * block);
    for (int64_t i = 0; i < c; ++i) {
      const double d = part_mean[b * c + i] - total[i];
      m2[i] += part_m2[b * c + i] + nb * d * d;
    }
  }
  for (int64_t i = 0; i < c; ++i) {
    mp[i] = static_cast<float>(total[i]);
    vp[i] = static_cast<float>(m2[i] / static_cast<double>(rows));
  }
  return ffi::Error::Success();
}

ffi::Error DualSumsImpl(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> g, ffi::Buffer<ffi::F32> x,
                        ffi::Buffer<ffi::F32> mean, ffi::ResultBuffer<ffi::F32> sum_g,
                        ffi::ResultBuffer<ffi::F32> sum_gx) {
  int64_t rows, c, rows_x, c_x;
  if (!Channels(g.dimensions(), &rows, &c) || !Channels(x.dimensions(), &rows_x, &c_x) ||
      rows != rows_x || c != c_x || mean.element_count() != static_cast<size_t>(c) ||
      sum_g->element_count() != static_cast<size_t>(c) ||
      sum_gx->element_count() != static_cast<size_t>(c)) {
    return ffi::Error(ffi::ErrorCode::kInvalidArgument, "norm dual sums: inconsistent shapes");
  }
  const float* gp = g.typed_data();
  const float* xp = x.typed_data();
  const float* mp = mean.typed_data();
  const int64_t block = BlockRows(c), blocks = (rows + block - 1) / block;
  std::vector<float> part(blocks * 2 * c);
  ParallelFor(pool, blocks, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t r0 = b * block, r1 = std::min(rows, r0 + block);
      float* __restrict sg = part.data() + b * 2 * c;
      float* __restrict sgx = sg + c;
      std::fill(sg, sg + 2 * c, 0.0f);
      for (int64_t r = r0; r < r1; ++r) {
        const float* __restrict gv = gp + r * c;
        const float* __restrict xv = xp + r * c;
        for (int64_t i = 0; i < c; ++i) {
          sg[i] += gv[i];
          sgx[i] += gv[i] * (xv[i] - mp[i]);
        }
      }
    }
  });
  std::vector<double> a(c, 0.0), bsum(c, 0.0);
  for (int64_t b = 0; b < blocks; ++b)
    for (int64_t i = 0; i < c; ++i) {
      a[i] += part[b * 2 * c + i];
      bsum[i] += part[b * 2 * c + c + i];
    }
  float* o1 = sum_g->typed_data();
  float* o2 = sum_gx->typed_data();
  for (int64_t i = 0; i < c; ++i) {
    o1[i] = static_cast<float>(a[i]);
    o2[i] = static_cast<float>(bsum[i]);
  }
  return ffi::Error::Success();
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(JaxcnnNormMoments, MomentsImpl,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>());

XLA_FFI_DEFINE_HANDLER_SYMBOL(JaxcnnNormDualSums, DualSumsImpl,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>());
