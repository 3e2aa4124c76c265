// What the fused kernels share: a tensor seen as rows of its last dimension,
// the CPU-feature clones of the hot loops, and the row chunking for threads.
#pragma once

#include <ATen/core/Tensor.h>

#include <algorithm>
#include <cstdint>
#include <vector>

// The hot loops get an AVX2 + FMA clone beside the baseline x86-64 one; the
// dynamic loader picks one for the CPU it runs on (GCC function
// multiversioning). Elsewhere the baseline code alone.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define PGOLF_CPU_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define PGOLF_CPU_CLONES
#endif
// Loop bodies written once as templates and inlined into each clone.
#define PGOLF_ALWAYS_INLINE inline __attribute__((always_inline))

namespace pgolf::kernels {

// A tensor as `count` rows of its last dimension (`width` elements, stride 1)
// without copying: q and k arrive as transposed views of the projection.
template <typename T>
class Rows {
 public:
  explicit Rows(const at::Tensor& t);
  T* row(int64_t r) const { return base_ + (offsets_.empty() ? r * width : offsets_[r]); }
  int64_t count = 0;
  int64_t width = 0;

 private:
  T* base_;
  std::vector<int64_t> offsets_;  // element offset of each row; empty when contiguous
};

template <typename T>
Rows<T>::Rows(const at::Tensor& t)
    : count(t.numel() / std::max<int64_t>(t.size(-1), 1)),
      width(t.size(-1)),
      base_(static_cast<T*>(t.data_ptr())) {
  if (t.is_contiguous()) return;
  const int64_t lead = t.dim() - 1;
  offsets_.resize(count);
  std::vector<int64_t> index(lead, 0);
  int64_t offset = 0;
  for (int64_t r = 0; r < count; ++r) {
    offsets_[r] = offset;
    for (int64_t d = lead - 1; d >= 0; --d) {  // odometer over the leading dims
      offset += t.stride(d);
      if (++index[d] < t.size(d)) break;
      offset -= t.stride(d) * t.size(d);
      index[d] = 0;
    }
  }
}

// Rows per parallel chunk: about 64K elements, enough to amortise a task.
inline int64_t row_grain(int64_t width) {
  return std::max<int64_t>(1, 65536 / std::max<int64_t>(width, 1));
}

}  // namespace pgolf::kernels
