// Uploaded codes and the fused scoring + top-k search on the GPU.
//
// Device layout of an upload: each row's element codes padded with zeros to a multiple of 16 bytes
// (row_stride_), so that the scorer reads whole 16-byte words; the float8 per-vector scale moves to
// its own float array. A collection is never expanded to float32 on the device.
//
// search() per batch of queries:
//   1. prepare_queries: q'[j] = q[j] * scale[j] (zero-padded to the dimension chunk), c0 = q . offset,
//      ||q||^2 (double sums, as on the CPU) and, for b1, the binarised query bits.
//   2. score_topk: block (tile of up to kMaxTile rows) x (group of kQueries queries). Each thread scores
//      kRowsPerThread rows against the group's queries straight from the compact codes (q' chunks of
//      kDimChunk dims staged in shared memory, float8 through a 256-entry table, int8 and bits
//      decoded in registers). Per query the tile's (key, row) pairs are sorted in shared memory with
//      a bitonic network (key = score for ip/cos and -score for l2/hamming, ties by the smaller row)
//      and the best min(k, tile rows) go to a candidate list in global memory.
//   3. merge_pairs: sorted candidate lists are merged pairwise (rank by binary search), each merge
//      keeping the best k, until one list per query remains.
//   4. finalize: ids and natural-form scores, -1 and -inf/+inf padding past the end.
// An eligibility bitset (search(..., allow, ...)) is copied into the workspace with the queries; a row
// whose bit is clear enters the tile sort as padding (-inf, kNoRow), exactly like the rows past the
// end of the last tile, so it can never displace a real candidate and comes out as id -1. A row bias
// (search(..., row_bias, ...)) is copied there too and added to each row's natural-form score before
// the tile sort, so the returned scores include it (as search_cpu with CodeView::row_bias).
// k up to kMaxK (4096) is supported; the workspace is grown once per context and query batches are
// sized to fit it, so the search path does not allocate once warmed up.
#include <cuda_fp16.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "cuda/context.cuh"

namespace vecstash::kernels::cuda {
namespace {

constexpr unsigned kThreads = 256;
constexpr unsigned kRowsPerThread = 4;
constexpr unsigned kMaxTile = kThreads * kRowsPerThread;  // 1024 rows per block, also the sort size limit
constexpr unsigned kQueries = 8;                          // queries scored together by one block
constexpr unsigned kDimChunk = 512;                       // query dims staged in shared memory at a time
constexpr std::uint32_t kNoRow = 0xFFFFFFFFu;             // candidate padding (sorts after every real row)

struct Cand {
  float key;
  std::uint32_t row;
};
static_assert(sizeof(Cand) == 8, "Cand is two 32-bit words");

/// Total order used everywhere: higher key first, then smaller row. Keys are never NaN (mapped to -inf).
__device__ __forceinline__ bool better(float ka, std::uint32_t ra, float kb, std::uint32_t rb) {
  return ka > kb || (ka == kb && ra < rb);
}

struct QueryArgs {
  float* queries = nullptr;  // nb x dim, dense (uploaded by search())
  std::uint32_t dim = 0;
  std::uint32_t qs_len = 0;     // floats per prepared query (multiple of kDimChunk)
  std::uint32_t qbits_len = 0;  // 32-bit words per binarised query (qs_len / 32)
  const float* scale = nullptr;
  const float* offset = nullptr;
  float* qs = nullptr;             // nb x qs_len
  std::uint32_t* qbits = nullptr;  // nb x qbits_len
  float* c0 = nullptr;             // nb: q . offset
  float* qq = nullptr;             // nb: ||q||^2
};

/// One block per query.
__global__ void __launch_bounds__(kThreads) prepare_queries(QueryArgs a) {
  __shared__ double scratch[32];
  const std::size_t b = blockIdx.x;
  const float* q = a.queries + b * a.dim;
  float* qs = a.qs + b * a.qs_len;
  double qq = 0.0, c0 = 0.0;
  for (std::uint32_t j = threadIdx.x; j < a.qs_len; j += blockDim.x) {
    float v = 0.0f;
    if (j < a.dim) {
      const float x = q[j];
      qq += static_cast<double>(x) * x;
      if (a.offset != nullptr) c0 += static_cast<double>(x) * a.offset[j];
      v = a.scale != nullptr ? x * a.scale[j] : x;
    }
    qs[j] = v;  // zero past the dimension, so padded code elements contribute nothing
  }
  std::uint32_t* qb = a.qbits + b * a.qbits_len;
  for (std::uint32_t w = threadIdx.x; w < a.qbits_len; w += blockDim.x) {
    std::uint32_t bits = 0;
    for (std::uint32_t t = 0; t < 32; ++t) {
      const std::uint32_t j = w * 32 + t;
      if (j < a.dim && q[j] > (a.offset != nullptr ? a.offset[j] : 0.0f)) bits |= 1u << t;
    }
    qb[w] = bits;
  }
  qq = block_sum(qq, scratch);
  c0 = block_sum(c0, scratch);
  if (threadIdx.x == 0) {
    a.qq[b] = static_cast<float>(qq);
    a.c0[b] = static_cast<float>(c0);
  }
}

struct ScoreArgs {
  const std::uint8_t* codes = nullptr;  // n x stride bytes
  std::size_t stride = 0;               // bytes per device row, multiple of 16
  std::size_t n = 0;
  const float* row_scale = nullptr;      // n floats, float8 per-vector only
  const float* sq_norms = nullptr;       // n floats (l2, cos)
  const std::uint64_t* allow = nullptr;  // ceil(n / 64) words of row eligibility, or null (all rows)
  const float* row_bias = nullptr;       // n floats added to the natural-form scores, or null
  const float* qs = nullptr;             // nb x qs_len
  const std::uint32_t* qbits = nullptr;  // nb x qbits_len
  const float* c0 = nullptr;
  const float* qq = nullptr;
  std::uint32_t qs_len = 0, qbits_len = 0;
  std::uint32_t nq = 0;  // queries in this batch
  Metric metric = Metric::kIp;
  std::uint32_t tile_rows = 0;  // <= kMaxTile
  std::uint32_t sort_size = 0;  // power of two >= tile_rows, <= kMaxTile
  std::uint32_t keep = 0;       // candidates kept per tile: min(k, tile_rows)
  std::size_t tiles = 0;
  Cand* cand = nullptr;  // nq x tiles x keep
};

/// Bytes of one device row covered by a chunk of kDimChunk dimensions.
VECSTASH_CONSTEXPR_HD unsigned chunk_bytes(CodeKind k) { return kDimChunk * element_bits(k) / 8; }

/// acc[q] += sum over the 16-byte word `w` (code elements e0 .. e0+E) of q'[q][e] * v(e).
template <CodeKind K>
__device__ __forceinline__ void accumulate(const uint4& w, unsigned e0, const float (*qsh)[kDimChunk], const float* lut,
                                           float (&acc)[kQueries]) {
  const std::uint32_t word[4] = {w.x, w.y, w.z, w.w};
  if constexpr (K == CodeKind::kF32) {
#pragma unroll
    for (unsigned q = 0; q < kQueries; ++q) {
      const float4 p = *reinterpret_cast<const float4*>(&qsh[q][e0]);
      acc[q] = fmaf(p.x, __uint_as_float(word[0]), acc[q]);
      acc[q] = fmaf(p.y, __uint_as_float(word[1]), acc[q]);
      acc[q] = fmaf(p.z, __uint_as_float(word[2]), acc[q]);
      acc[q] = fmaf(p.w, __uint_as_float(word[3]), acc[q]);
    }
  } else if constexpr (K == CodeKind::kF16 || K == CodeKind::kBF16) {
    float v[8];
#pragma unroll
    for (unsigned i = 0; i < 4; ++i) {
      if constexpr (K == CodeKind::kF16) {
        v[2 * i] = __half2float(__ushort_as_half(static_cast<unsigned short>(word[i] & 0xFFFFu)));
        v[2 * i + 1] = __half2float(__ushort_as_half(static_cast<unsigned short>(word[i] >> 16)));
      } else {
        v[2 * i] = __uint_as_float(word[i] << 16);
        v[2 * i + 1] = __uint_as_float(word[i] & 0xFFFF0000u);
      }
    }
#pragma unroll
    for (unsigned q = 0; q < kQueries; ++q) {
      const float4 p0 = *reinterpret_cast<const float4*>(&qsh[q][e0]);
      const float4 p1 = *reinterpret_cast<const float4*>(&qsh[q][e0 + 4]);
      float s = acc[q];
      s = fmaf(p0.x, v[0], s);
      s = fmaf(p0.y, v[1], s);
      s = fmaf(p0.z, v[2], s);
      s = fmaf(p0.w, v[3], s);
      s = fmaf(p1.x, v[4], s);
      s = fmaf(p1.y, v[5], s);
      s = fmaf(p1.z, v[6], s);
      s = fmaf(p1.w, v[7], s);
      acc[q] = s;
    }
  } else if constexpr (is_fp8(K) || K == CodeKind::kI8) {
    float v[16];
#pragma unroll
    for (unsigned i = 0; i < 4; ++i) {
#pragma unroll
      for (unsigned b = 0; b < 4; ++b) {
        const std::uint32_t byte = (word[i] >> (8 * b)) & 0xFFu;
        if constexpr (K == CodeKind::kI8)
          v[4 * i + b] = static_cast<float>(static_cast<std::int8_t>(byte));
        else
          v[4 * i + b] = lut[byte];
      }
    }
#pragma unroll
    for (unsigned q = 0; q < kQueries; ++q) {
      float s = acc[q];
#pragma unroll
      for (unsigned i = 0; i < 4; ++i) {
        const float4 p = *reinterpret_cast<const float4*>(&qsh[q][e0 + 4 * i]);
        s = fmaf(p.x, v[4 * i], s);
        s = fmaf(p.y, v[4 * i + 1], s);
        s = fmaf(p.z, v[4 * i + 2], s);
        s = fmaf(p.w, v[4 * i + 3], s);
      }
      acc[q] = s;
    }
  } else {  // kB1 scored as +-1 (ip, cos, l2): 128 dimensions per word, 4 per step
    // The loop stays rolled: unrolled, this kernel grew to ~53k instructions (20x the others), which
    // thrashed the instruction cache and made b1 ip/cos/l2 searches ~50x slower than f32 on an H200.
    // The summation order, and so every score, is the same either way.
#pragma unroll 1
    for (unsigned t = 0; t < 32; ++t) {
      const unsigned i = t >> 3;
      const std::uint32_t bits = i == 0 ? w.x : i == 1 ? w.y : i == 2 ? w.z : w.w;
      const unsigned nib = (bits >> (4 * (t & 7u))) & 0xFu;
      const unsigned e = e0 + 4 * t;
#pragma unroll
      for (unsigned q = 0; q < kQueries; ++q) {
        const float4 p = *reinterpret_cast<const float4*>(&qsh[q][e]);
        float s = acc[q];
        s += (nib & 1u) ? p.x : -p.x;
        s += (nib & 2u) ? p.y : -p.y;
        s += (nib & 4u) ? p.z : -p.z;
        s += (nib & 8u) ? p.w : -p.w;
        acc[q] = s;
      }
    }
  }
}

/// Bitonic sort of `size` (a power of two, <= kMaxTile) pairs in shared memory, best first.
/// Every thread of the block must call it (it synchronises).
__device__ void bitonic_sort(float* key, std::uint32_t* row, unsigned size) {
  for (unsigned span = 2; span <= size; span <<= 1) {
    for (unsigned stride = span >> 1; stride > 0; stride >>= 1) {
      for (unsigned i = threadIdx.x; i < size / 2; i += blockDim.x) {
        const unsigned lo = 2 * i - (i & (stride - 1));  // index with the `stride` bit clear
        const unsigned hi = lo + stride;
        const bool best_first = (lo & span) == 0;
        const float klo = key[lo], khi = key[hi];
        const std::uint32_t rlo = row[lo], rhi = row[hi];
        if (better(khi, rhi, klo, rlo) == best_first) {
          key[lo] = khi;
          key[hi] = klo;
          row[lo] = rhi;
          row[hi] = rlo;
        }
      }
      __syncthreads();
    }
  }
}

/// Grid: (tiles, ceil(nq / kQueries)); kThreads threads.
template <CodeKind K, bool kHamming>
__global__ void __launch_bounds__(kThreads) score_topk(ScoreArgs a) {
  __shared__ __align__(16) float qsh[kQueries][kDimChunk];  // 16 KiB
  __shared__ std::uint32_t qbsh[kQueries][kDimChunk / 32];  // 512 B
  __shared__ float lut[256];                                // 1 KiB (float8 only)
  __shared__ float skey[kMaxTile];                          // 4 KiB
  __shared__ std::uint32_t srow[kMaxTile];                  // 4 KiB

  const unsigned tid = threadIdx.x;
  const std::size_t tile = blockIdx.x;
  const unsigned q0 = blockIdx.y * kQueries;
  const std::size_t row0 = tile * a.tile_rows;
  const unsigned tile_len = static_cast<unsigned>(min(static_cast<std::size_t>(a.tile_rows), a.n - row0));

  if constexpr (is_fp8(K)) {
    for (unsigned c = tid; c < 256; c += blockDim.x) {
      if constexpr (K == CodeKind::kE4M3)
        lut[c] = numeric::e4m3_to_float(static_cast<std::uint8_t>(c));
      else
        lut[c] = numeric::e5m2_to_float(static_cast<std::uint8_t>(c));
    }
  }

  // Rows past the end of the tile, and rows excluded by the eligibility bitset, are neither scored
  // nor offered (they become padding in the sort below).
  bool allowed[kRowsPerThread];
#pragma unroll
  for (unsigned r = 0; r < kRowsPerThread; ++r) {
    const unsigned local = tid + r * kThreads;
    const std::size_t gr = row0 + local;
    allowed[r] = local < tile_len && (a.allow == nullptr || ((a.allow[gr / 64] >> (gr % 64)) & 1u) != 0);
  }

  float acc[kRowsPerThread][kQueries];
  std::uint32_t hacc[kRowsPerThread][kQueries];
#pragma unroll
  for (unsigned r = 0; r < kRowsPerThread; ++r) {
#pragma unroll
    for (unsigned q = 0; q < kQueries; ++q) {
      acc[r][q] = 0.0f;
      hacc[r][q] = 0;
    }
  }

  constexpr unsigned kChunk = chunk_bytes(K);
  static_assert(kChunk % 16 == 0, "a dimension chunk covers whole 16-byte words");
  for (std::size_t cb = 0, d0 = 0; cb < a.stride; cb += kChunk, d0 += kDimChunk) {
    __syncthreads();  // the previous chunk is no longer read
    if constexpr (kHamming) {
      constexpr unsigned kWords = kDimChunk / 32;
      for (unsigned i = tid; i < kQueries * kWords; i += blockDim.x) {
        const unsigned q = i / kWords, e = i % kWords;
        qbsh[q][e] = q0 + q < a.nq ? a.qbits[static_cast<std::size_t>(q0 + q) * a.qbits_len + d0 / 32 + e] : 0u;
      }
    } else {
      for (unsigned i = tid; i < kQueries * kDimChunk; i += blockDim.x) {
        const unsigned q = i / kDimChunk, e = i % kDimChunk;
        qsh[q][e] = q0 + q < a.nq ? a.qs[static_cast<std::size_t>(q0 + q) * a.qs_len + d0 + e] : 0.0f;
      }
    }
    __syncthreads();
    const unsigned words = static_cast<unsigned>(min(static_cast<std::size_t>(kChunk), a.stride - cb) / 16);
#pragma unroll
    for (unsigned r = 0; r < kRowsPerThread; ++r) {
      const unsigned local = tid + r * kThreads;
      if (allowed[r]) {
        const auto* p = reinterpret_cast<const uint4*>(a.codes + (row0 + local) * a.stride + cb);
        for (unsigned u = 0; u < words; ++u) {
          const uint4 w = __ldg(p + u);
          if constexpr (kHamming) {
            const std::uint32_t word[4] = {w.x, w.y, w.z, w.w};
#pragma unroll
            for (unsigned q = 0; q < kQueries; ++q) {
#pragma unroll
              for (unsigned i = 0; i < 4; ++i) hacc[r][q] += __popc(word[i] ^ qbsh[q][4 * u + i]);
            }
          } else {
            constexpr unsigned kElems = 128 / element_bits(K);  // elements per 16-byte word
            accumulate<K>(w, u * kElems, qsh, lut, acc[r]);
          }
        }
      }
    }
  }

  // Per query: keys of the tile's rows, sorted in shared memory; the best `keep` become candidates.
  const unsigned size = a.sort_size;
  for (unsigned q = 0; q < kQueries; ++q) {
    if (q0 + q >= a.nq) break;  // uniform across the block
    const std::size_t qi = q0 + q;
    __syncthreads();  // the previous query's candidates have been written out
#pragma unroll
    for (unsigned r = 0; r < kRowsPerThread; ++r) {
      const unsigned local = tid + r * kThreads;
      if (local >= size) continue;
      float key = -INFINITY;
      std::uint32_t row = kNoRow;
      if (allowed[r]) {
        const std::size_t gr = row0 + local;
        row = static_cast<std::uint32_t>(gr);
        // Pick this query's accumulator without a dynamically indexed register array.
        float raw = 0.0f;
        std::uint32_t hraw = 0;
#pragma unroll
        for (unsigned t = 0; t < kQueries; ++t) {
          if (t == q) {
            raw = acc[r][t];
            hraw = hacc[r][t];
          }
        }
        // The bias is added in natural form: key = score + bias (similarities), -(distance + bias).
        const float bias = a.row_bias != nullptr ? a.row_bias[gr] : 0.0f;
        if constexpr (kHamming) {
          key = -(static_cast<float>(hraw) + bias);
        } else {
          if (a.row_scale != nullptr) raw *= a.row_scale[gr];
          const float ip = a.c0[qi] + raw;
          switch (a.metric) {
            case Metric::kIp:
              key = ip + bias;
              break;
            case Metric::kL2:
              key = -(a.qq[qi] - 2.0f * ip + a.sq_norms[gr] + bias);
              break;
            case Metric::kCos: {
              const float den = sqrtf(a.qq[qi]) * sqrtf(a.sq_norms[gr]);
              key = (den > 0.0f ? ip / den : 0.0f) + bias;
              break;
            }
            default:
              key = -INFINITY;
              break;
          }
        }
        if (isnan(key)) key = -INFINITY;
      }
      skey[local] = key;
      srow[local] = row;
    }
    __syncthreads();
    bitonic_sort(skey, srow, size);
    __syncthreads();  // also covers size == 1 (no sorting stage ran)
    Cand* out = a.cand + (qi * a.tiles + tile) * a.keep;
    for (unsigned i = tid; i < a.keep; i += blockDim.x) out[i] = Cand{skey[i], srow[i]};
  }
}

/// Number of entries of `list` (sorted best first) strictly better than `e`.
__device__ __forceinline__ unsigned count_better(const Cand* list, unsigned len, Cand e) {
  unsigned lo = 0, hi = len;
  while (lo < hi) {
    const unsigned mid = (lo + hi) / 2;
    if (better(list[mid].key, list[mid].row, e.key, e.row))
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}
/// Number of entries of `list` (sorted best first) better than or equal to `e`.
__device__ __forceinline__ unsigned count_not_worse(const Cand* list, unsigned len, Cand e) {
  unsigned lo = 0, hi = len;
  while (lo < hi) {
    const unsigned mid = (lo + hi) / 2;
    if (!better(e.key, e.row, list[mid].key, list[mid].row))
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

/// Grid: (ceil(lists_in / 2), nq). Merges lists 2p and 2p+1 (each `len_in` long, sorted) of every
/// query into list p (`len_out` = min(k, 2 len_in) long); a lone last list is copied and padded.
__global__ void __launch_bounds__(kThreads)
    merge_pairs(const Cand* __restrict__ in, Cand* __restrict__ out, std::size_t lists_in, unsigned len_in,
                std::size_t lists_out, unsigned len_out) {
  const std::size_t q = blockIdx.y, p = blockIdx.x;
  const Cand* A = in + (q * lists_in + 2 * p) * len_in;
  const bool has_b = 2 * p + 1 < lists_in;
  const Cand* B = A + len_in;
  const unsigned la = len_in, lb = has_b ? len_in : 0;
  Cand* O = out + (q * lists_out + p) * len_out;
  // Stable merge by rank: ties (only padding entries compare equal) keep A before B.
  for (unsigned i = threadIdx.x; i < la; i += blockDim.x) {
    const Cand e = A[i];
    const unsigned pos = i + (has_b ? count_better(B, lb, e) : 0u);
    if (pos < len_out) O[pos] = e;
  }
  for (unsigned i = threadIdx.x; i < lb; i += blockDim.x) {
    const Cand e = B[i];
    const unsigned pos = i + count_not_worse(A, la, e);
    if (pos < len_out) O[pos] = e;
  }
  for (unsigned i = la + lb + threadIdx.x; i < len_out; i += blockDim.x) O[i] = Cand{-INFINITY, kNoRow};
}

/// ids / scores (nq x k) from one sorted list of `len` candidates per query.
__global__ void __launch_bounds__(kThreads)
    finalize(const Cand* __restrict__ lists, unsigned len, std::size_t nq, std::size_t k, bool negate, float pad,
             std::int64_t* __restrict__ ids, float* __restrict__ scores) {
  const std::size_t total = nq * k;
  for (std::size_t idx = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x; idx < total;
       idx += static_cast<std::size_t>(gridDim.x) * blockDim.x) {
    const std::size_t q = idx / k, i = idx % k;
    std::int64_t id = -1;
    float score = pad;
    if (i < len) {
      const Cand c = lists[q * len + i];
      if (c.row != kNoRow) {
        id = static_cast<std::int64_t>(c.row);
        score = negate ? -c.key : c.key;
      }
    }
    ids[idx] = id;
    scores[idx] = score;
  }
}

/// Repack host-layout code rows (code_size bytes) into device rows (stride bytes, zero padded) and
/// move the float8 per-vector scale into its own array.
__global__ void __launch_bounds__(kThreads)
    repack_codes(const std::uint8_t* __restrict__ src, std::size_t m, std::size_t code_size, std::size_t payload,
                 std::size_t stride, std::uint8_t* __restrict__ dst, float* __restrict__ row_scale) {
  const std::size_t first = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const std::size_t step = static_cast<std::size_t>(gridDim.x) * blockDim.x;
  const std::size_t total = m * payload;
  for (std::size_t idx = first; idx < total; idx += step) {
    const std::size_t r = idx / payload, b = idx % payload;
    dst[r * stride + b] = src[r * code_size + b];
  }
  if (row_scale != nullptr)
    for (std::size_t r = first; r < m; r += step) row_scale[r] = load_le_float(src + r * code_size + payload);
}

template <CodeKind K, bool kHamming>
Status launch_score(dim3 grid, cudaStream_t stream, const ScoreArgs& a) {
  score_topk<K, kHamming><<<grid, kThreads, 0, stream>>>(a);
  VECSTASH_CUDA_CHECK_LAUNCH();
  return Status::ok();
}

Status launch_score_for(CodeKind kind, Metric metric, dim3 grid, cudaStream_t stream, const ScoreArgs& a) {
  switch (kind) {
    case CodeKind::kF32:
      return launch_score<CodeKind::kF32, false>(grid, stream, a);
    case CodeKind::kF16:
      return launch_score<CodeKind::kF16, false>(grid, stream, a);
    case CodeKind::kBF16:
      return launch_score<CodeKind::kBF16, false>(grid, stream, a);
    case CodeKind::kE4M3:
      return launch_score<CodeKind::kE4M3, false>(grid, stream, a);
    case CodeKind::kE5M2:
      return launch_score<CodeKind::kE5M2, false>(grid, stream, a);
    case CodeKind::kI8:
      return launch_score<CodeKind::kI8, false>(grid, stream, a);
    case CodeKind::kB1:
      return metric == Metric::kHamming ? launch_score<CodeKind::kB1, true>(grid, stream, a)
                                        : launch_score<CodeKind::kB1, false>(grid, stream, a);
  }
  return Status::invalid_argument("GPU search: unknown code kind");
}

unsigned next_pow2(unsigned x) {
  unsigned p = 1;
  while (p < x) p <<= 1;
  return p;
}

/// Shape of the candidate merge for one query: lists per round and their lengths.
struct MergePlan {
  struct Round {
    std::size_t lists_in, lists_out;
    unsigned len_in, len_out;
  };
  std::vector<Round> rounds;
  std::size_t max_entries = 0;  // per query, any buffer
  unsigned final_len = 0;
};

MergePlan plan_merge(std::size_t tiles, unsigned keep, std::size_t k) {
  MergePlan plan;
  std::size_t lists = tiles;
  unsigned len = keep;
  plan.max_entries = lists * len;
  while (lists > 1) {
    MergePlan::Round r;
    r.lists_in = lists;
    r.len_in = len;
    r.lists_out = (lists + 1) / 2;
    r.len_out = static_cast<unsigned>(std::min<std::size_t>(k, 2 * static_cast<std::size_t>(len)));
    plan.rounds.push_back(r);
    lists = r.lists_out;
    len = r.len_out;
    plan.max_entries = std::max(plan.max_entries, lists * len);
  }
  plan.final_len = len;
  return plan;
}

}  // namespace

Status CudaContext::upload_codes(const Codec& codec, const CodeView& codes) {
  if (!codec.trained()) return Status::failed_precondition("GPU upload: codec is not trained");
  if (codes.rows > 0 && codes.codes == nullptr) return Status::invalid_argument("GPU upload: null codes");
  if (codes.row_bias != nullptr)
    return Status::invalid_argument("GPU upload: the row bias is given per search (search(..., row_bias, ...))");
  if (codes.rows >= kNoRow)
    return Status::invalid_argument("GPU upload: at most " + std::to_string(kNoRow - 1) + " rows per context");
  VECSTASH_RETURN_IF_ERROR(activate());
  uploaded_ = false;  // a failed upload leaves nothing searchable

  const std::size_t n = codes.rows;
  // b1 codes may come without norms (their L2 follows from the code on the CPU); the device scores L2
  // as ||q||^2 - 2 q.x_hat + ||x_hat||^2, so derive the norms here once.
  std::vector<float> derived_norms;
  CodeView view = codes;
  if (codec.kind() == CodeKind::kB1 && codes.sq_norms == nullptr && n > 0) {
    derived_norms.resize(n);
    VECSTASH_RETURN_IF_ERROR(
        codec.squared_norms(std::span<const std::uint8_t>(codes.codes, n * codec.code_size()), derived_norms));
    view.sq_norms = derived_norms.data();
  }
  CodecArgs a;
  VECSTASH_RETURN_IF_ERROR(upload_codec_params(codec, &search_params_, &a));
  const std::size_t stride = round_up(std::max<std::size_t>(a.payload, 1), 16);
  VECSTASH_RETURN_IF_ERROR(codes_.reserve(n * stride));
  if (a.per_vector) VECSTASH_RETURN_IF_ERROR(row_scales_.reserve(n * sizeof(float)));
  if (view.sq_norms != nullptr) VECSTASH_RETURN_IF_ERROR(sq_norms_.reserve(n * sizeof(float)));

  if (n > 0) {
    VECSTASH_CUDA_TRY(cudaMemsetAsync(codes_.data(), 0, n * stride, stream_));
    const std::size_t cs = a.code_size;
    const std::size_t chunk = std::min(n, std::max<std::size_t>(1, kChunkBytes / cs));
    VECSTASH_RETURN_IF_ERROR(scratch_.reserve(chunk * cs));
    for (std::size_t r0 = 0; r0 < n; r0 += chunk) {
      const std::size_t m = std::min(chunk, n - r0);
      VECSTASH_CUDA_TRY(
          cudaMemcpyAsync(scratch_.data(), view.codes + r0 * cs, m * cs, cudaMemcpyHostToDevice, stream_));
      repack_codes<<<grid_for(m * a.payload, kThreads), kThreads, 0, stream_>>>(
          scratch_.as<std::uint8_t>(), m, cs, a.payload, stride, codes_.as<std::uint8_t>(r0 * stride),
          a.per_vector ? row_scales_.as<float>(r0 * sizeof(float)) : nullptr);
      VECSTASH_CUDA_CHECK_LAUNCH();
    }
    if (view.sq_norms != nullptr)
      VECSTASH_CUDA_TRY(
          cudaMemcpyAsync(sq_norms_.data(), view.sq_norms, n * sizeof(float), cudaMemcpyHostToDevice, stream_));
  }
  VECSTASH_RETURN_IF_ERROR(sync());

  codec_ = codec;
  search_args_ = a;
  rows_ = n;
  row_stride_ = stride;
  has_sq_norms_ = view.sq_norms != nullptr;
  uploaded_ = true;
  return Status::ok();
}

Status CudaContext::search(MatrixView<const float> queries, const SearchParams& params, const std::uint64_t* allow,
                           const float* row_bias, TopK* out) {
  if (out == nullptr) return Status::invalid_argument("GPU search: null output");
  if (!uploaded_) return Status::failed_precondition("GPU search: no codes uploaded (call upload_codes first)");
  // The uploaded rows were checked at upload; validate the queries and parameters against the codec.
  static const std::uint8_t kNoBytes = 0;
  static const float kNoNorms = 0.0f;
  CodeView shape;
  shape.codes = &kNoBytes;
  shape.rows = 0;
  shape.sq_norms = has_sq_norms_ ? &kNoNorms : nullptr;
  VECSTASH_RETURN_IF_ERROR(validate_search(codec_, queries, shape, params));
  const Metric metric = params.metric;
  if (rows_ > 0 && (metric == Metric::kL2 || metric == Metric::kCos) && !has_sq_norms_)
    return Status::invalid_argument(std::string("GPU search: metric ") + std::string(to_string(metric)) +
                                    " needs the squared norms of the codes (pass them to upload_codes)");

  const std::size_t nq = queries.rows, k = params.k, n = rows_, d = codec_.dim();
  const bool hib = metric == Metric::kIp || metric == Metric::kCos;
  const float pad = hib ? -std::numeric_limits<float>::infinity() : std::numeric_limits<float>::infinity();
  out->nq = nq;
  out->k = k;
  out->ids.assign(nq * k, -1);
  out->scores.assign(nq * k, pad);
  if (nq == 0 || n == 0) return Status::ok();
  VECSTASH_RETURN_IF_ERROR(activate());

  const CodeKind kind = codec_.kind();
  const unsigned tile_rows = static_cast<unsigned>(
      std::min<std::size_t>(n, tile_rows_ == 0 ? kMaxTile : std::min<std::size_t>(tile_rows_, kMaxTile)));
  const std::size_t tiles = ceil_div(n, tile_rows);
  if (tiles > 0x7FFFFFFFu)
    return Status::invalid_argument("GPU search: " + std::to_string(tiles) +
                                    " tiles exceed the grid limit (raise the tile size)");
  const unsigned sort_size = next_pow2(tile_rows);
  const unsigned keep = static_cast<unsigned>(std::min<std::size_t>(k, tile_rows));
  const MergePlan plan = plan_merge(tiles, keep, k);

  const std::size_t elems = row_stride_ * 8 / element_bits(kind);  // padded elements per row
  const std::size_t qs_len = round_up(elems, kDimChunk);
  const std::size_t qbits_len = qs_len / 32;
  const std::size_t per_query = d * sizeof(float) + qs_len * sizeof(float) + qbits_len * sizeof(std::uint32_t) +
                                2 * sizeof(float) + 2 * plan.max_entries * sizeof(Cand) +
                                k * (sizeof(std::int64_t) + sizeof(float)) + 8 * 256;
  const std::size_t batch =
      std::max<std::size_t>(1, std::min<std::size_t>({nq, 65535, kSearchWorkspaceBytes / per_query}));

  Layout layout;
  const std::size_t off_q = layout.add(batch * d * sizeof(float));
  const std::size_t off_qs = layout.add(batch * qs_len * sizeof(float));
  const std::size_t off_qb = layout.add(batch * qbits_len * sizeof(std::uint32_t));
  const std::size_t off_c0 = layout.add(batch * sizeof(float));
  const std::size_t off_qq = layout.add(batch * sizeof(float));
  const std::size_t off_ca = layout.add(batch * plan.max_entries * sizeof(Cand));
  const std::size_t off_cb = layout.add(batch * plan.max_entries * sizeof(Cand));
  const std::size_t off_id = layout.add(batch * k * sizeof(std::int64_t));
  const std::size_t off_sc = layout.add(batch * k * sizeof(float));
  const std::size_t allow_words = allow != nullptr ? ceil_div(n, std::size_t{64}) : 0;
  const std::size_t off_al = layout.add(allow_words * sizeof(std::uint64_t));
  const std::size_t off_bias = layout.add(row_bias != nullptr ? n * sizeof(float) : 0);
  VECSTASH_RETURN_IF_ERROR(search_ws_.reserve(layout.total()));
  if (allow != nullptr)
    VECSTASH_CUDA_TRY(cudaMemcpyAsync(search_ws_.as<std::uint64_t>(off_al), allow, allow_words * sizeof(std::uint64_t),
                                      cudaMemcpyHostToDevice, stream_));
  if (row_bias != nullptr)
    VECSTASH_CUDA_TRY(cudaMemcpyAsync(search_ws_.as<float>(off_bias), row_bias, n * sizeof(float),
                                      cudaMemcpyHostToDevice, stream_));

  QueryArgs qa;
  qa.queries = search_ws_.as<float>(off_q);
  qa.dim = static_cast<std::uint32_t>(d);
  qa.qs_len = static_cast<std::uint32_t>(qs_len);
  qa.qbits_len = static_cast<std::uint32_t>(qbits_len);
  qa.scale = search_args_.scale;
  qa.offset = search_args_.offset;
  qa.qs = search_ws_.as<float>(off_qs);
  qa.qbits = search_ws_.as<std::uint32_t>(off_qb);
  qa.c0 = search_ws_.as<float>(off_c0);
  qa.qq = search_ws_.as<float>(off_qq);

  ScoreArgs sa;
  sa.codes = codes_.as<std::uint8_t>();
  sa.stride = row_stride_;
  sa.n = n;
  sa.row_scale = search_args_.per_vector ? row_scales_.as<float>() : nullptr;
  sa.sq_norms = has_sq_norms_ ? sq_norms_.as<float>() : nullptr;
  sa.allow = allow != nullptr ? search_ws_.as<std::uint64_t>(off_al) : nullptr;
  sa.row_bias = row_bias != nullptr ? search_ws_.as<float>(off_bias) : nullptr;
  sa.qs = qa.qs;
  sa.qbits = qa.qbits;
  sa.c0 = qa.c0;
  sa.qq = qa.qq;
  sa.qs_len = qa.qs_len;
  sa.qbits_len = qa.qbits_len;
  sa.metric = metric;
  sa.tile_rows = tile_rows;
  sa.sort_size = sort_size;
  sa.keep = keep;
  sa.tiles = tiles;

  Cand* const buf_a = search_ws_.as<Cand>(off_ca);
  Cand* const buf_b = search_ws_.as<Cand>(off_cb);
  auto* const d_ids = search_ws_.as<std::int64_t>(off_id);
  auto* const d_scores = search_ws_.as<float>(off_sc);

  for (std::size_t b0 = 0; b0 < nq; b0 += batch) {
    const std::size_t nb = std::min(batch, nq - b0);
    VECSTASH_CUDA_TRY(cudaMemcpy2DAsync(qa.queries, d * sizeof(float), queries.row(b0), queries.stride * sizeof(float),
                                        d * sizeof(float), nb, cudaMemcpyHostToDevice, stream_));
    prepare_queries<<<static_cast<unsigned>(nb), kThreads, 0, stream_>>>(qa);
    VECSTASH_CUDA_CHECK_LAUNCH();

    sa.nq = static_cast<std::uint32_t>(nb);
    sa.cand = buf_a;
    const dim3 grid(static_cast<unsigned>(tiles), static_cast<unsigned>(ceil_div(nb, kQueries)));
    VECSTASH_RETURN_IF_ERROR(launch_score_for(kind, metric, grid, stream_, sa));

    Cand* cur = buf_a;
    Cand* nxt = buf_b;
    for (const MergePlan::Round& r : plan.rounds) {
      const dim3 mgrid(static_cast<unsigned>(r.lists_out), static_cast<unsigned>(nb));
      merge_pairs<<<mgrid, kThreads, 0, stream_>>>(cur, nxt, r.lists_in, r.len_in, r.lists_out, r.len_out);
      VECSTASH_CUDA_CHECK_LAUNCH();
      std::swap(cur, nxt);
    }
    finalize<<<grid_for(nb * k, kThreads), kThreads, 0, stream_>>>(cur, plan.final_len, nb, k, !hib, pad, d_ids,
                                                                   d_scores);
    VECSTASH_CUDA_CHECK_LAUNCH();
    VECSTASH_CUDA_TRY(cudaMemcpyAsync(out->ids.data() + b0 * k, d_ids, nb * k * sizeof(std::int64_t),
                                      cudaMemcpyDeviceToHost, stream_));
    VECSTASH_CUDA_TRY(cudaMemcpyAsync(out->scores.data() + b0 * k, d_scores, nb * k * sizeof(float),
                                      cudaMemcpyDeviceToHost, stream_));
  }
  return sync();
}

}  // namespace vecstash::kernels::cuda
