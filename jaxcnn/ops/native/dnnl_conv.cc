// oneDNN convolutions for XLA:CPU through the XLA FFI: forward, input gradient and kernel
// gradient of a channels-last float32 or bfloat16 convolution (1-d as 2-d, 2-d, 3-d) with
// stride, (low, high) padding, dilation and groups. Layouts are jaxcnn's: input
// (N, *spatial, C_in), kernel (*kernel_size, C_in / groups, C_out), output (N, *out, C_out).
// bfloat16: operands and results in bfloat16, products accumulated in float32 by oneDNN;
// the kernel gradient is accumulated into a float32 buffer and rounded to bfloat16 once,
// by the reorder into jaxcnn's layout (lax gives a bfloat16 kernel gradient too).
// JaxcnnHasBf16() says whether oneDNN has bfloat16 kernels for this CPU.
//
// One oneDNN primitive per (pass, shapes, parameters), created on first use and cached;
// the cache lock is held only for the lookup and the insert. Execution is lock-free:
// primitives are const and every call brings its own scratchpad (scratchpad_mode::user) and
// stream.

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <unordered_map>
#include <vector>

#include "oneapi/dnnl/dnnl.hpp"
#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;
using dnnl::memory;

extern "C" void omp_set_num_threads(int);  // from the OpenMP runtime libdnnl loads
extern "C" int omp_get_max_threads(void);

namespace {

std::atomic<int> g_threads{0};
// Passes with fewer multiply-adds than this run on the calling thread alone: for small
// convolutions an OpenMP team costs more than it gains, and XLA runs other work on the
// second core meanwhile (0: never).
std::atomic<int64_t> g_serial_below{0};
// The OpenMP default, read when the library is loaded (before any call changed a thread's).
const int g_default_threads = omp_get_max_threads();
// Whether PreferJitAvx2 below may pick jit:avx2 over brgconv (1, the default) or not (0).
std::atomic<int> g_prefer_jit{1};

enum Pass { kForward = 0, kInputGrad = 1, kKernelGrad = 2 };

dnnl::engine& Engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

dnnl::stream& Stream() {
  thread_local dnnl::stream stream(Engine());
  return stream;
}

// The geometry of one convolution, in oneDNN's (N, C, *spatial) order; 1-d gets H = 1.
struct Geometry {
  memory::dims src, wei, dst, strides, dilates, pad_l, pad_r;
  memory::dims wei_strides;  // jaxcnn's (*k, I/G, O) kernel as strides over `wei`
  int64_t groups = 1;
  bool ok = true;
  std::string error;
};

memory::dims ChannelsFirst(ffi::Span<const int64_t> d, bool one_d) {
  // (N, *spatial, C) -> (N, C, *spatial), 1-d -> (N, C, 1, W)
  memory::dims out = {d[0], d[d.size() - 1]};
  if (one_d) out.push_back(1);
  for (size_t i = 1; i + 1 < d.size(); ++i) out.push_back(d[i]);
  return out;
}

Geometry MakeGeometry(ffi::Span<const int64_t> x, ffi::Span<const int64_t> w,
                      ffi::Span<const int64_t> y, ffi::Span<const int64_t> stride,
                      ffi::Span<const int64_t> pad_lo, ffi::Span<const int64_t> pad_hi,
                      ffi::Span<const int64_t> dilation, int64_t groups) {
  Geometry g;
  const size_t n = x.size() - 2;
  if (n < 1 || n > 3 || w.size() != n + 2 || y.size() != n + 2 || stride.size() != n ||
      pad_lo.size() != n || pad_hi.size() != n || dilation.size() != n || groups < 1) {
    g.ok = false;
    g.error = "dnnl_conv: inconsistent ranks";
    return g;
  }
  const bool one_d = n == 1;
  g.groups = groups;
  g.src = ChannelsFirst(x, one_d);
  g.dst = ChannelsFirst(y, one_d);
  if (one_d) {
    g.strides = {1};
    g.dilates = {0};
    g.pad_l = {0};
    g.pad_r = {0};
  }
  for (size_t i = 0; i < n; ++i) {
    g.strides.push_back(stride[i]);
    g.dilates.push_back(dilation[i] - 1);
    g.pad_l.push_back(pad_lo[i]);
    g.pad_r.push_back(pad_hi[i]);
  }
  // Kernel (*k, I/G, O): element (k..., i, o) at offset ((k...) * IG + i) * O + o.
  const int64_t ig = w[n], o = w[n + 1], og = o / groups;
  memory::dims k;
  if (one_d) k.push_back(1);
  for (size_t i = 0; i < n; ++i) k.push_back(w[i]);
  std::vector<int64_t> kstride(k.size());
  int64_t s = ig * o;
  for (size_t i = k.size(); i-- > 0;) {
    kstride[i] = s;
    s *= k[i];
  }
  if (groups > 1) {
    g.wei = {groups, og, ig};
    g.wei_strides = {og, 1, o};
  } else {
    g.wei = {o, ig};
    g.wei_strides = {1, o};
  }
  for (size_t i = 0; i < k.size(); ++i) {
    g.wei.push_back(k[i]);
    g.wei_strides.push_back(kstride[i]);
  }
  return g;
}

memory::format_tag ChannelsLast(size_t rank) {
  return rank == 4 ? memory::format_tag::nhwc : memory::format_tag::ndhwc;
}

std::string Key(int pass, memory::data_type dt, const Geometry& g, bool prefer_jit) {
  std::ostringstream os;
  os << pass << '|' << static_cast<int>(dt) << '|' << g.groups << '|' << prefer_jit;
  for (const memory::dims* d : {&g.src, &g.wei, &g.dst, &g.strides, &g.dilates, &g.pad_l,
                                &g.pad_r}) {
    os << '|';
    for (auto v : *d) os << v << ',';
  }
  return os.str();
}

// A cached primitive with the descriptors of its user-layout operands and, where the
// primitive wants the kernel in another layout, the reorder to or from jaxcnn's.
struct Entry {
  dnnl::primitive prim;
  memory::desc a_md, b_md, out_md;  // operand and result descriptors in user layout
  memory::desc wei_user, wei_prim;  // kernel (or kernel gradient) layouts
  bool reorder = false;
  dnnl::reorder wei_reorder;
  memory::desc scratch;
};

bool IsReference(const dnnl::primitive_desc_base& pd) {
  return std::strncmp(pd.impl_info_str(), "ref", 3) == 0;
}

// oneDNN 3.2 on AVX2 (no AVX-512) ranks its brgemm convolutions first, but with fewer than
// 8 input channels (one AVX2 vector) its older jit:avx2 kernels run the forward and the
// input gradient up to 1.9x faster (3-d CNN's first layer forward 4.0 vs 7.6 ms, LeNet-5's
// second layer input gradient 0.87 vs 1.24 ms; benchmarks/README.md). The choice depends on
// the shapes only, so results stay the same run to run.
template <typename PD>
PD PreferJitAvx2(const PD& pd, memory::data_type dt, const Geometry& g, bool prefer_jit) {
  const char* name = pd.impl_info_str();
  if (!prefer_jit || dt != memory::data_type::f32 ||
      g.groups > 1 || g.src[1] >= 8 ||
      std::strncmp(name, "brg", 3) != 0 || std::strstr(name, "avx2") == nullptr) {
    return pd;
  }
  PD next = pd;
  while (next.next_impl()) {
    if (std::strcmp(next.impl_info_str(), "jit:avx2") == 0) return next;
  }
  return pd;
}

std::shared_ptr<Entry> Build(int pass, memory::data_type dt, const Geometry& g,
                             bool prefer_jit) {
  auto& eng = Engine();
  const auto act = ChannelsLast(g.src.size());
  memory::desc src(g.src, dt, act), dst(g.dst, dt, act);
  memory::desc wei_user(g.wei, dt, g.wei_strides);
  memory::desc wei_any(g.wei, dt, memory::format_tag::any);
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  const auto algo = dnnl::algorithm::convolution_direct;
  auto fwd = dnnl::convolution_forward::primitive_desc(
      eng, dnnl::prop_kind::forward_training, algo, src, wei_any, dst, g.strides, g.dilates,
      g.pad_l, g.pad_r, attr);
  auto e = std::make_shared<Entry>();
  e->wei_user = wei_user;
  if (pass == kForward) {
    const auto pd = PreferJitAvx2(fwd, dt, g, prefer_jit);
    e->prim = dnnl::convolution_forward(pd);
    e->wei_prim = pd.weights_desc();
    e->scratch = pd.scratchpad_desc();
    e->a_md = src;
    e->out_md = dst;
  } else if (pass == kInputGrad) {
    const auto pd = PreferJitAvx2(dnnl::convolution_backward_data::primitive_desc(
        eng, algo, src, wei_any, dst, g.strides, g.dilates, g.pad_l, g.pad_r, fwd, attr), dt, g, prefer_jit);
    e->prim = dnnl::convolution_backward_data(pd);
    e->wei_prim = pd.weights_desc();
    e->scratch = pd.scratchpad_desc();
    e->a_md = dst;
    e->out_md = src;
  } else {
    // bfloat16: the gradient accumulates in float32 and is rounded once by the reorder
    // below, unless only a reference implementation writes float32 and an optimised one
    // writes bfloat16 itself.
    auto make = [&](memory::data_type dw_type) {
      memory::desc dw(g.wei, dw_type, memory::format_tag::any);
      return dnnl::convolution_backward_weights::primitive_desc(
          eng, algo, src, dw, dst, g.strides, g.dilates, g.pad_l, g.pad_r, fwd, attr);
    };
    auto pd = make(memory::data_type::f32);
    if (dt != memory::data_type::f32 && IsReference(pd)) {
      try {
        auto own = make(dt);
        if (!IsReference(own)) pd = own;
      } catch (const dnnl::error&) {
      }
    }
    e->prim = dnnl::convolution_backward_weights(pd);
    e->wei_prim = pd.diff_weights_desc();
    e->scratch = pd.scratchpad_desc();
    e->a_md = src;
    e->b_md = dst;
  }
  e->reorder = e->wei_prim != wei_user;
  if (e->reorder) {
    if (pass == kKernelGrad) {
      e->wei_reorder = dnnl::reorder(dnnl::reorder::primitive_desc(eng, e->wei_prim, eng,
                                                                   wei_user));
    } else {
      e->wei_reorder = dnnl::reorder(dnnl::reorder::primitive_desc(eng, wei_user, eng,
                                                                   e->wei_prim));
    }
  }
  return e;
}

// The process-wide cache of E values (one per type E).
template <typename E>
struct Cache {
  std::mutex mu;
  std::unordered_map<std::string, std::shared_ptr<E>> map;
  static Cache& Get() {
    static Cache cache;
    return cache;
  }
};

// The cached value of `key`, made by build() on first use; the lock is held only for the
// lookup and the insert (building takes milliseconds).
template <typename E, typename F>
std::shared_ptr<E> Cached(const std::string& key, const F& build) {
  Cache<E>& cache = Cache<E>::Get();
  {
    std::lock_guard<std::mutex> lock(cache.mu);
    auto it = cache.map.find(key);
    if (it != cache.map.end()) return it->second;
  }
  std::shared_ptr<E> e = build();
  std::lock_guard<std::mutex> lock(cache.mu);
  return cache.map.emplace(key, e).first->second;
}

std::shared_ptr<Entry> Lookup(int pass, memory::data_type dt, const Geometry& g) {
  // read once: the key and the primitive agree even if the setting changes meanwhile
  const bool prefer_jit = g_prefer_jit.load(std::memory_order_relaxed);
  return Cached<Entry>(Key(pass, dt, g, prefer_jit),
                       [&] { return Build(pass, dt, g, prefer_jit); });
}

struct AlignedBuffer {
  explicit AlignedBuffer(size_t bytes)
      : data(bytes ? std::aligned_alloc(64, (bytes + 63) / 64 * 64) : nullptr) {}
  ~AlignedBuffer() { std::free(data); }
  void* data;
};

// One pass: `a` and `b` are (x, w) for the forward, (dy, w) for the input gradient and
// (x, dy) for the kernel gradient; `out` is y, dx or dw.
ffi::Error Run(int pass, ffi::AnyBuffer a, ffi::AnyBuffer b, ffi::Result<ffi::AnyBuffer> out,
               ffi::Span<const int64_t> stride, ffi::Span<const int64_t> pad_lo,
               ffi::Span<const int64_t> pad_hi, ffi::Span<const int64_t> dilation,
               int64_t groups) {
  const ffi::DataType type = a.element_type();
  if ((type != ffi::F32 && type != ffi::BF16) || b.element_type() != type ||
      out->element_type() != type) {
    return ffi::Error(ffi::ErrorCode::kInvalidArgument,
                      "dnnl_conv: float32 or bfloat16 operands and result of one dtype");
  }
  const auto dt = type == ffi::F32 ? memory::data_type::f32 : memory::data_type::bf16;
  ffi::Span<const int64_t> x = a.dimensions(), w = b.dimensions(), y = out->dimensions();
  if (pass == kInputGrad) {
    x = out->dimensions();
    y = a.dimensions();
  } else if (pass == kKernelGrad) {
    w = out->dimensions();
    y = b.dimensions();
  }
  Geometry g = MakeGeometry(x, w, y, stride, pad_lo, pad_hi, dilation, groups);
  if (!g.ok) return ffi::Error(ffi::ErrorCode::kInvalidArgument, g.error);
  // Multiply-adds of the pass (the same for all three): every output element of the forward
  // takes (input channels per group) * (kernel size) of them.
  int64_t macs = g.wei[g.groups > 1 ? 2 : 1];
  for (auto d : g.dst) macs *= d;  // (N, O, *spatial)
  for (size_t i = g.groups > 1 ? 3 : 2; i < g.wei.size(); ++i) macs *= g.wei[i];
  const int threads = g_threads.load(std::memory_order_relaxed);
  const int64_t serial_below = g_serial_below.load(std::memory_order_relaxed);
  // this calling thread's OpenMP teams; set on every call, as the choice varies by pass
  omp_set_num_threads(macs < serial_below ? 1 : threads > 0 ? threads : g_default_threads);
  try {
    auto e = Lookup(pass, dt, g);
    auto& eng = Engine();
    auto& strm = Stream();
    AlignedBuffer scratch(e->scratch.get_size());
    AlignedBuffer wbuf(e->reorder ? e->wei_prim.get_size() : 0);
    memory scratch_m(e->scratch, eng, scratch.data);
    if (pass == kKernelGrad) {
      memory src(e->a_md, eng, a.untyped_data()), ddst(e->b_md, eng, b.untyped_data());
      memory dw_user(e->wei_user, eng, out->untyped_data());
      memory dw = e->reorder ? memory(e->wei_prim, eng, wbuf.data) : dw_user;
      e->prim.execute(strm, {{DNNL_ARG_SRC, src}, {DNNL_ARG_DIFF_DST, ddst},
                             {DNNL_ARG_DIFF_WEIGHTS, dw}, {DNNL_ARG_SCRATCHPAD, scratch_m}});
      if (e->reorder) e->wei_reorder.execute(strm, dw, dw_user);
    } else {
      memory act(e->a_md, eng, a.untyped_data()), res(e->out_md, eng, out->untyped_data());
      memory w_user(e->wei_user, eng, b.untyped_data());
      memory wm = w_user;
      if (e->reorder) {
        wm = memory(e->wei_prim, eng, wbuf.data);
        e->wei_reorder.execute(strm, w_user, wm);
      }
      if (pass == kForward) {
        e->prim.execute(strm, {{DNNL_ARG_SRC, act}, {DNNL_ARG_WEIGHTS, wm},
                               {DNNL_ARG_DST, res}, {DNNL_ARG_SCRATCHPAD, scratch_m}});
      } else {
        e->prim.execute(strm, {{DNNL_ARG_DIFF_DST, act}, {DNNL_ARG_WEIGHTS, wm},
                               {DNNL_ARG_DIFF_SRC, res}, {DNNL_ARG_SCRATCHPAD, scratch_m}});
      }
    }
    strm.wait();
  } catch (const dnnl::error& err) {
    return ffi::Error(ffi::ErrorCode::kInternal, std::string("dnnl_conv: ") + err.what());
  }
  return ffi::Error::Success();
}

// The kernel gradient of a 1-d, stride-1, ungrouped float32 convolution whose output is as
// long as its input, as K matrix products over the rows of the whole batch: the input and
// output gradient, flattened to (N * T, C) rows, give for kernel tap k (input offset
// s = k * dilation - pad_lo) dW[k] = sum_r x[r + s] (x) dy[r] with one (C_in x R) x (R x C_out)
// product, R the rows with r + s inside the batch. Rows whose r + s falls in the next or
// previous example are then taken out again (|s| rows per example). oneDNN's matmul runs
// these far faster than its AVX2 backward-weights convolution (benchmarks/README.md).
struct RowsEntry {
  dnnl::matmul prim;
  memory::desc a, b, c, scratch;
};

std::shared_ptr<RowsEntry> RowsLookup(int64_t rows, int64_t ci, int64_t co) {
  std::ostringstream key;
  key << rows << ',' << ci << ',' << co;
  return Cached<RowsEntry>(key.str(), [&] {
    auto e = std::make_shared<RowsEntry>();
    e->a = memory::desc({ci, rows}, memory::data_type::f32, memory::dims{1, ci});
    e->b = memory::desc({rows, co}, memory::data_type::f32, memory::dims{co, 1});
    e->c = memory::desc({ci, co}, memory::data_type::f32, memory::dims{co, 1});
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    auto pd = dnnl::matmul::primitive_desc(Engine(), e->a, e->b, e->c, attr);
    e->prim = dnnl::matmul(pd);
    e->scratch = pd.scratchpad_desc();
    return e;
  });
}

ffi::Error KernelGradRows(ffi::Buffer<ffi::F32> x, ffi::Buffer<ffi::F32> dy,
                          ffi::ResultBuffer<ffi::F32> dw, ffi::Span<const int64_t> pad_lo,
                          ffi::Span<const int64_t> dilation) {
  auto xd = x.dimensions(), gd = dy.dimensions(), wd = dw->dimensions();
  if (xd.size() != 3 || gd.size() != 3 || wd.size() != 3 || pad_lo.size() != 1 ||
      dilation.size() != 1 || xd[0] != gd[0] || xd[1] != gd[1] || wd[1] != xd[2] ||
      wd[2] != gd[2]) {
    return ffi::Error(ffi::ErrorCode::kInvalidArgument,
                      "dnnl_conv: the rows kernel gradient takes a 1-d convolution whose output "
                      "is as long as its input");
  }
  const int64_t n = xd[0], t = xd[1], ci = xd[2], co = gd[2], taps = wd[0];
  const int64_t total = n * t;
  const float* xp = x.typed_data();
  const float* gp = dy.typed_data();
  float* out = dw->typed_data();
  const int threads = g_threads.load(std::memory_order_relaxed);
  omp_set_num_threads(threads > 0 ? threads : g_default_threads);
  try {
    auto& eng = Engine();
    auto& strm = Stream();
    for (int64_t k = 0; k < taps; ++k) {
      const int64_t s = k * dilation[0] - pad_lo[0];
      const int64_t r0 = std::max<int64_t>(0, -s), r1 = std::min(total, total - s);
      float* dwk = out + k * ci * co;
      if (r1 <= r0) {
        std::memset(dwk, 0, sizeof(float) * ci * co);
        continue;
      }
      auto e = RowsLookup(r1 - r0, ci, co);
      AlignedBuffer scratch(e->scratch.get_size());
      memory a(e->a, eng, const_cast<float*>(xp + (r0 + s) * ci));
      memory b(e->b, eng, const_cast<float*>(gp + r0 * co));
      memory c(e->c, eng, dwk);
      memory sm(e->scratch, eng, scratch.data);
      e->prim.execute(strm, {{DNNL_ARG_SRC, a}, {DNNL_ARG_WEIGHTS, b}, {DNNL_ARG_DST, c},
                             {DNNL_ARG_SCRATCHPAD, sm}});
      strm.wait();
      // Take out the rows that crossed into a neighbouring example: time steps u = r mod t
      // with u + s outside [0, t), for the examples whose r + s stays inside the batch.
      for (int64_t ex = 0; ex < n; ++ex) {
        const int64_t lo = s < 0 ? 0 : t - s, hi = s < 0 ? -s : t;
        for (int64_t u = std::max<int64_t>(lo, 0); u < std::min(hi, t); ++u) {
          const int64_t r = ex * t + u;
          if (r < r0 || r >= r1) continue;
          const float* xr = xp + (r + s) * ci;
          const float* gr = gp + r * co;
          for (int64_t i = 0; i < ci; ++i) {
            const float xv = xr[i];
            float* row = dwk + i * co;
            for (int64_t j = 0; j < co; ++j) row[j] -= xv * gr[j];
          }
        }
      }
    }
  } catch (const dnnl::error& err) {
    return ffi::Error(ffi::ErrorCode::kInternal, std::string("dnnl_conv: ") + err.what());
  }
  return ffi::Error::Success();
}

template <int P>
ffi::Error RunPass(ffi::AnyBuffer a, ffi::AnyBuffer b, ffi::Result<ffi::AnyBuffer> out,
                   ffi::Span<const int64_t> stride, ffi::Span<const int64_t> pad_lo,
                   ffi::Span<const int64_t> pad_hi, ffi::Span<const int64_t> dilation,
                   int64_t groups) {
  return Run(P, a, b, out, stride, pad_lo, pad_hi, dilation, groups);
}

#define JAXCNN_BINDING(P)                                  \
  ffi::Ffi::Bind()                                         \
      .Arg<ffi::AnyBuffer>()                               \
      .Arg<ffi::AnyBuffer>()                               \
      .Ret<ffi::AnyBuffer>()                               \
      .Attr<ffi::Span<const int64_t>>("stride")            \
      .Attr<ffi::Span<const int64_t>>("pad_lo")            \
      .Attr<ffi::Span<const int64_t>>("pad_hi")            \
      .Attr<ffi::Span<const int64_t>>("dilation")          \
      .Attr<int64_t>("groups")

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(JaxcnnConvForward, RunPass<kForward>, JAXCNN_BINDING(kForward));
XLA_FFI_DEFINE_HANDLER_SYMBOL(JaxcnnConvInputGrad, RunPass<kInputGrad>,
                              JAXCNN_BINDING(kInputGrad));
XLA_FFI_DEFINE_HANDLER_SYMBOL(JaxcnnConvKernelGrad, RunPass<kKernelGrad>,
                              JAXCNN_BINDING(kKernelGrad));

XLA_FFI_DEFINE_HANDLER_SYMBOL(JaxcnnConvKernelGradRows, KernelGradRows,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Attr<ffi::Span<const int64_t>>("pad_lo")
                                  .Attr<ffi::Span<const int64_t>>("dilation"));

// The number of OpenMP threads each oneDNN call runs with (0: the OpenMP default).
extern "C" int JaxcnnSetThreads(int n);
extern "C" int JaxcnnSetThreads(int n) {
  int old = g_threads.exchange(n < 0 ? 0 : n);
  return old;
}

// Passes with fewer multiply-adds than `macs` run on one thread (0: none).
extern "C" int64_t JaxcnnSetSerialBelow(int64_t macs);
extern "C" int64_t JaxcnnSetSerialBelow(int64_t macs) {
  return g_serial_below.exchange(macs < 0 ? 0 : macs);
}

// Whether float32 passes with fewer than 8 input channels may take oneDNN's jit:avx2
// kernels over its brgemm ones on AVX2 CPUs (1) or take oneDNN's first choice (0); returns
// the previous setting. Primitives are cached per setting.
extern "C" int JaxcnnSetPreferJitAvx2(int on);
extern "C" int JaxcnnSetPreferJitAvx2(int on) { return g_prefer_jit.exchange(on ? 1 : 0); }

// 1 when oneDNN dispatches to bfloat16 instructions on this CPU (AVX-512 BF16, or AMX, which
// includes it; ONEDNN_MAX_CPU_ISA can lower it), else 0. ISA values nest as bit masks.
extern "C" int JaxcnnHasBf16();
extern "C" int JaxcnnHasBf16() {
  const unsigned isa = static_cast<unsigned>(dnnl_get_effective_cpu_isa());
  const unsigned bf16 = static_cast<unsigned>(dnnl_cpu_isa_avx512_core_bf16);
  return (isa & bf16) == bf16 ? 1 : 0;
}
