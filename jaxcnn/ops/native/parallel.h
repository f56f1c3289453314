// ParallelFor over XLA's intra-op thread pool, shared by jaxcnn's FFI handlers.

#ifndef JAXCNN_OPS_NATIVE_PARALLEL_H_
#define JAXCNN_OPS_NATIVE_PARALLEL_H_

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <thread>

#include "xla/ffi/api/ffi.h"

namespace jaxcnn {

// Runs body(begin, end) over [0, n) in pieces on the calling thread and XLA's intra-op
// pool. Pieces are claimed from a shared counter, so the caller never waits for a task
// that has not started (no deadlock when every pool thread is busy) and a task that
// starts after all pieces are claimed does nothing.
template <typename F>
void ParallelFor(xla::ffi::ThreadPool& pool, int64_t n, int64_t grain, const F& body) {
  const int64_t threads = std::max<int64_t>(1, pool.num_threads());
  const int64_t pieces = std::min<int64_t>(std::max<int64_t>(1, n / std::max<int64_t>(1, grain)),
                                           2 * threads);
  if (pieces <= 1 || threads <= 1) {
    body(0, n);
    return;
  }
  struct State {
    std::atomic<int64_t> next{0};
    std::atomic<int64_t> done{0};
  };
  auto state = std::make_shared<State>();
  auto run = [state, n, pieces, &body]() {
    for (int64_t p; (p = state->next.fetch_add(1)) < pieces;) {
      body(p * n / pieces, (p + 1) * n / pieces);
      state->done.fetch_add(1, std::memory_order_release);
    }
  };
  for (int64_t t = 1; t < std::min(threads, pieces); ++t) pool.Schedule([run]() { run(); });
  run();
  while (state->done.load(std::memory_order_acquire) < pieces) std::this_thread::yield();
}

}  // namespace jaxcnn

#endif  // JAXCNN_OPS_NATIVE_PARALLEL_H_
