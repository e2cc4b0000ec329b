#include "vecstash/kernels/relative.h"

#include <cmath>
#include <mutex>
#include <string>

#include "cpu/cpu_features.h"
#include "cpu/parallel.h"
#include "cpu/row_products.h"

namespace vecstash::kernels {

namespace {

/// Per-thread buffers of the row-block loop.
struct BlockScratch {
  std::vector<float> unit_rows;  // (kProductBlockRows) x ld: the block's normalised rows, zero padded
  std::vector<double> centred;   // d
  std::vector<float> product;    // product_scratch_size(ld)
  BlockScratch(std::size_t d, std::size_t ld)
      : unit_rows(cpu::kProductBlockRows * ld, 0.0f), centred(d), product(cpu::product_scratch_size(ld)) {}
};

/// The basis' state that the block loop reads.
struct BasisRef {
  std::size_t d, m, ld;
  const float* mean;    // d
  const float* padded;  // unit anchors from cpu::pad_matrix
};

/// Relative vectors of rows [r0, r0 + nq) (nq <= kProductBlockRows) into out (nq rows, out_stride apart).
void relative_block(const cpu::KernelTable& t, const BasisRef& b, MatrixView<const float> rows, std::size_t r0,
                    std::size_t nq, float* out, std::size_t out_stride, BlockScratch& s) {
  for (std::size_t q = 0; q < nq; ++q) {
    const float* x = rows.row(r0 + q);
    float* u = s.unit_rows.data() + q * b.ld;
    double ss = 0.0;
    for (std::size_t j = 0; j < b.d; ++j) {
      const double c = static_cast<double>(x[j]) - static_cast<double>(b.mean[j]);
      s.centred[j] = c;
      ss += c * c;
    }
    const double norm = std::sqrt(ss);
    if (norm > 0.0) {
      for (std::size_t j = 0; j < b.d; ++j) u[j] = static_cast<float>(s.centred[j] / norm);
    } else {
      std::fill(u, u + b.d, 0.0f);  // a zero row: every cosine is 0
    }
  }
  // dot_block works on row pairs; the partner of a lone last row must be zero (it is discarded).
  if (nq % 2 != 0) std::fill_n(s.unit_rows.data() + nq * b.ld, b.ld, 0.0f);
  cpu::multiply_block(t, s.unit_rows.data(), nq, b.padded, b.m, b.ld, out, out_stride, s.product.data());
}

int block_threads(int requested, std::size_t n, std::size_t m, std::size_t d) {
  const std::size_t blocks = (n + cpu::kProductBlockRows - 1) / cpu::kProductBlockRows;
  // About 256 K multiply-adds per thread at the least; tiny inputs stay on the calling thread.
  const std::size_t work = std::max<std::size_t>(1, n * m * d / (std::size_t{1} << 18));
  return cpu::resolve_threads(requested, std::min(blocks, work));
}

}  // namespace

Result<RelativeBasis> RelativeBasis::make(MatrixView<const float> anchors, const RelativeOptions& options) {
  const std::size_t m = anchors.rows, d = anchors.cols;
  if (m == 0 || m > kMaxRelativeAnchors)
    return Status::invalid_argument("relative basis: anchors must have 1 to " + std::to_string(kMaxRelativeAnchors) +
                                    " rows, got " + std::to_string(m));
  if (d == 0 || d > kMaxRelativeAnchors)
    return Status::invalid_argument("relative basis: anchor dimension must be in [1, " +
                                    std::to_string(kMaxRelativeAnchors) + "], got " + std::to_string(d));
  VECSTASH_RETURN_IF_ERROR(validate_rows(anchors, d, "relative basis anchors"));

  RelativeBasis b;
  b.options_ = options;
  b.dim_ = d;
  b.anchors_ = m;
  b.mean_.assign(d, 0.0f);
  if (options.center) {
    std::vector<double> sum(d, 0.0);
    for (std::size_t i = 0; i < m; ++i)
      for (std::size_t j = 0; j < d; ++j) sum[j] += anchors.row(i)[j];
    for (std::size_t j = 0; j < d; ++j) b.mean_[j] = static_cast<float>(sum[j] / static_cast<double>(m));
  }
  // Anchors are centred with the stored float mean, exactly as the rows will be.
  b.unit_.resize(m * d);
  std::vector<double> c(d);
  for (std::size_t i = 0; i < m; ++i) {
    double ss = 0.0;
    for (std::size_t j = 0; j < d; ++j) {
      c[j] = static_cast<double>(anchors.row(i)[j]) - static_cast<double>(b.mean_[j]);
      ss += c[j] * c[j];
    }
    if (!(ss > 0.0))
      return Status::invalid_argument("relative basis: anchor " + std::to_string(i) + " is zero" +
                                      (options.center ? " after centring (equal to the anchors' mean)" : ""));
    const double norm = std::sqrt(ss);
    for (std::size_t j = 0; j < d; ++j) b.unit_[i * d + j] = static_cast<float>(c[j] / norm);
  }
  b.padded_ = cpu::pad_matrix(b.unit_.data(), m, d, d);
  b.ready_ = true;
  return b;
}

Status RelativeBasis::transform(MatrixView<const float> rows, MatrixView<float> out, int threads) const {
  if (!ready_) return Status::failed_precondition("relative transform: the basis is empty");
  VECSTASH_RETURN_IF_ERROR(validate_rows(rows, dim_, "relative transform"));
  const std::size_t n = rows.rows, m = anchors_;
  if (n == 0) return Status::ok();
  if (out.rows != n || out.cols != m || out.data == nullptr || out.stride < out.cols)
    return Status::invalid_argument("relative transform: output must be " + std::to_string(n) + " x " +
                                    std::to_string(m));
  const cpu::KernelTable& t = cpu::kernels();
  const BasisRef ref{dim_, m, cpu::product_ld(dim_), mean_.data(), padded_.data()};
  const std::size_t blocks = (n + cpu::kProductBlockRows - 1) / cpu::kProductBlockRows;
  cpu::parallel_chunks(blocks, block_threads(threads, n, m, dim_), [&](std::size_t b0, std::size_t b1) {
    BlockScratch s(dim_, ref.ld);
    for (std::size_t blk = b0; blk < b1; ++blk) {
      const std::size_t r0 = blk * cpu::kProductBlockRows, nq = std::min(cpu::kProductBlockRows, n - r0);
      relative_block(t, ref, rows, r0, nq, out.row(r0), out.stride, s);
    }
  });
  return Status::ok();
}

Status RelativeBasis::encode(const Codec& codec, MatrixView<const float> rows, std::span<std::uint8_t> codes,
                             std::span<float> sq_norms, int threads) const {
  if (!ready_) return Status::failed_precondition("relative encode: the basis is empty");
  if (!codec.trained()) return Status::failed_precondition("relative encode: codec is not trained");
  if (codec.dim() != anchors_)
    return Status::invalid_argument("relative encode: codec dimension " + std::to_string(codec.dim()) +
                                    " != number of anchors " + std::to_string(anchors_));
  VECSTASH_RETURN_IF_ERROR(validate_rows(rows, dim_, "relative encode"));
  const std::size_t n = rows.rows, m = anchors_, cs = codec.code_size();
  if (codes.size() != n * cs)
    return Status::invalid_argument("relative encode: codes buffer has " + std::to_string(codes.size()) +
                                    " bytes, need " + std::to_string(n * cs));
  if (!sq_norms.empty() && sq_norms.size() != n)
    return Status::invalid_argument("relative encode: sq_norms must be empty or hold one float per row");
  if (n == 0) return Status::ok();

  const cpu::KernelTable& t = cpu::kernels();
  const BasisRef ref{dim_, m, cpu::product_ld(dim_), mean_.data(), padded_.data()};
  const std::size_t blocks = (n + cpu::kProductBlockRows - 1) / cpu::kProductBlockRows;
  std::mutex error_mu;
  Status error;
  cpu::parallel_chunks(blocks, block_threads(threads, n, m, dim_), [&](std::size_t b0, std::size_t b1) {
    BlockScratch s(dim_, ref.ld);
    std::vector<float> rel(cpu::kProductBlockRows * m);
    for (std::size_t blk = b0; blk < b1; ++blk) {
      const std::size_t r0 = blk * cpu::kProductBlockRows, nq = std::min(cpu::kProductBlockRows, n - r0);
      relative_block(t, ref, rows, r0, nq, rel.data(), m, s);
      // The codec's own per-row encode (one thread: this is already one task of the parallel loop),
      // so the codes are exactly those of codec.encode(transform(rows)).
      const Status st = codec.encode(MatrixView<const float>(rel.data(), nq, m), codes.subspan(r0 * cs, nq * cs),
                                     sq_norms.empty() ? std::span<float>() : sq_norms.subspan(r0, nq), 1);
      if (!st.is_ok()) {
        const std::lock_guard<std::mutex> lock(error_mu);
        if (error.is_ok()) error = st;
        return;
      }
    }
  });
  return error;
}

}  // namespace vecstash::kernels
