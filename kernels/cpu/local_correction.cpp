// LocalCorrection (kernels/include/vecstash/kernels/align.h): nearest-anchor residual correction of a
// linear map, with its parameters chosen by leave-one-out on the anchors.
#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <numeric>
#include <string>
#include <vector>

#include "cpu/parallel.h"
#include "cpu/row_products.h"
#include "vecstash/kernels/align.h"
#include "vecstash/kernels/codec.h"

namespace vecstash::kernels {

namespace {

constexpr std::array<std::uint32_t, 5> kGridNeighbours = {4, 8, 16, 32, 64};
constexpr std::array<float, 4> kGridTemperature = {0.02f, 0.05f, 0.1f, 0.2f};
constexpr std::array<float, 5> kGridWeight = {0.0f, 0.25f, 0.5f, 0.75f, 1.0f};
// Rows whose cosines to the anchors are held at once (rows x anchors floats).
constexpr std::size_t kCosineBlock = 256;

// Indices of the k largest of c[0..m) (ties: lower index first), best first; c[skip] is left out.
void top_k(const float* c, std::size_t m, std::size_t k, std::size_t skip, std::vector<std::uint32_t>& idx) {
  idx.resize(m);
  std::iota(idx.begin(), idx.end(), 0u);
  if (skip < m) {
    std::swap(idx[skip], idx[m - 1]);
    idx.pop_back();
  }
  k = std::min(k, idx.size());
  auto better = [c](std::uint32_t a, std::uint32_t b) { return c[a] > c[b] || (c[a] == c[b] && a < b); };
  std::partial_sort(idx.begin(), idx.begin() + static_cast<std::ptrdiff_t>(k), idx.end(), better);
  idx.resize(k);
}

// out[0..dout) += weight * sum_j softmax(sims / temperature)_j * residuals[nbr_j], accumulated in double.
void add_correction(const float* sims, const std::uint32_t* nbr, std::size_t k, float temperature, float weight,
                    const float* residuals, std::size_t dout, double* acc, float* out) {
  std::fill_n(acc, dout, 0.0);
  double total = 0.0;
  for (std::size_t j = 0; j < k; ++j) {
    const double w = std::exp((static_cast<double>(sims[j]) - sims[0]) / temperature);
    total += w;
    const float* r = residuals + std::size_t{nbr[j]} * dout;
    for (std::size_t o = 0; o < dout; ++o) acc[o] += w * r[o];
  }
  const double scale = static_cast<double>(weight) / total;
  for (std::size_t o = 0; o < dout; ++o) out[o] = static_cast<float>(out[o] + scale * acc[o]);
}

Status check_params(const LocalCorrectionOptions& o, std::size_t m) {
  if (o.neighbours && (*o.neighbours < 1 || *o.neighbours > std::min(kMaxLocalNeighbours, m)))
    return Status::invalid_argument("local correction: neighbours must be in [1, " +
                                    std::to_string(std::min(kMaxLocalNeighbours, m)) + "] (the anchors)");
  if (o.temperature && !(*o.temperature >= 0.001f && *o.temperature <= 10.0f))
    return Status::invalid_argument("local correction: temperature must be in [0.001, 10]");
  if (o.weight && !(*o.weight >= 0.0f && *o.weight <= 2.0f))
    return Status::invalid_argument("local correction: weight must be in [0, 2]");
  return Status::ok();
}

}  // namespace

Result<LocalCorrection> LocalCorrection::fit(const Alignment& base, MatrixView<const float> source,
                                             MatrixView<const float> target, const LocalCorrectionOptions& options,
                                             int threads) {
  if (!base.fitted()) return Status::failed_precondition("local correction: the base alignment is not fitted");
  const std::size_t m = source.rows, din = base.dim_in(), dout = base.dim_out();
  if (m < 2 || m > kMaxRelativeAnchors)
    return Status::invalid_argument("local correction: needs 2 to " + std::to_string(kMaxRelativeAnchors) +
                                    " anchors, got " + std::to_string(m));
  if (target.rows != m)
    return Status::invalid_argument("local correction: source and target have different row counts");
  VECSTASH_RETURN_IF_ERROR(validate_rows(source, din, "local correction source"));
  VECSTASH_RETURN_IF_ERROR(validate_rows(target, dout, "local correction target"));
  VECSTASH_RETURN_IF_ERROR(check_params(options, m));

  LocalCorrection lc;
  auto basis = RelativeBasis::make(source, RelativeOptions{false});
  if (!basis.is_ok()) return Status::invalid_argument("local correction: " + basis.status().message());
  lc.basis_ = std::move(basis).value();
  lc.dim_out_ = dout;
  lc.residuals_.resize(m * dout);
  VECSTASH_RETURN_IF_ERROR(base.apply(source, MatrixView<float>(lc.residuals_.data(), m, dout), threads));
  std::vector<float> mapped(lc.residuals_);  // base(source_a)
  for (std::size_t a = 0; a < m; ++a)
    for (std::size_t o = 0; o < dout; ++o) lc.residuals_[a * dout + o] = target.row(a)[o] - mapped[a * dout + o];

  if (!options.measure && options.neighbours && options.temperature && options.weight) {
    lc.params_ = LocalCorrectionParams{*options.neighbours, *options.temperature, *options.weight};
    lc.loo_cosine_ = lc.base_cosine_ = std::numeric_limits<double>::quiet_NaN();
    lc.fitted_ = true;
    return lc;
  }

  // Candidate grid (a fixed option is its own one-point grid). Leave-one-out has m - 1 anchors to use.
  std::vector<std::uint32_t> ks;
  if (options.neighbours) {
    ks.push_back(static_cast<std::uint32_t>(std::min<std::size_t>(*options.neighbours, m - 1)));
  } else {
    for (std::uint32_t k : kGridNeighbours)
      if (k <= m - 1) ks.push_back(k);
    if (ks.empty()) ks.push_back(static_cast<std::uint32_t>(m - 1));
  }
  const std::vector<float> temps = options.temperature
                                       ? std::vector<float>{*options.temperature}
                                       : std::vector<float>(kGridTemperature.begin(), kGridTemperature.end());
  const std::vector<float> weights =
      options.weight ? std::vector<float>{*options.weight} : std::vector<float>(kGridWeight.begin(), kGridWeight.end());
  const std::size_t kmax = *std::max_element(ks.begin(), ks.end());

  // Each anchor's kmax nearest other anchors (cosine in the source space), best first.
  std::vector<std::uint32_t> nbr(m * kmax);
  std::vector<float> nsim(m * kmax);
  const std::size_t blocks = (m + kCosineBlock - 1) / kCosineBlock;
  const int nt = cpu::resolve_threads(threads, blocks);
  Status failed;
  cpu::parallel_chunks(blocks, nt, [&](std::size_t b0, std::size_t b1) {
    std::vector<float> cos(kCosineBlock * m);
    std::vector<std::uint32_t> idx;
    for (std::size_t b = b0; b < b1; ++b) {
      const std::size_t r0 = b * kCosineBlock, n = std::min(kCosineBlock, m - r0);
      const MatrixView<const float> rows(source.row(r0), n, din, source.stride);
      if (!lc.basis_.transform(rows, MatrixView<float>(cos.data(), n, m), 1).is_ok()) {
#pragma omp critical(vecstash_local_fit)
        failed = Status::internal("local correction: cosine transform failed");
        return;
      }
      for (std::size_t i = 0; i < n; ++i) {
        const float* c = cos.data() + i * m;
        top_k(c, m, kmax, r0 + i, idx);
        for (std::size_t j = 0; j < kmax; ++j) {
          nbr[(r0 + i) * kmax + j] = idx[j];
          nsim[(r0 + i) * kmax + j] = c[idx[j]];
        }
      }
    }
  });
  VECSTASH_RETURN_IF_ERROR(failed);

  // Per (k, temperature): each anchor's correction c_a, then for every weight w the mean of
  // cos(base_a + w c_a, target_a) from six dot products per anchor.
  struct Dots {
    double bt, ct, bb, cc, bc, tt;
  };
  std::vector<Dots> dots(m);
  double best = -std::numeric_limits<double>::infinity();
  LocalCorrectionParams chosen;
  // The base map alone (no neighbour involved, so nothing is left out): base.fit_cosine() when `base`
  // was fitted on these anchors.
  const double base_cos = cpu::mean_row_cosine(mapped.data(), target.row(0), target.stride, m, dout);
  for (std::uint32_t k : ks) {
    for (float temp : temps) {
      cpu::parallel_chunks(m, cpu::resolve_threads(threads, m / 64 + 1), [&](std::size_t a0, std::size_t a1) {
        std::vector<double> acc(dout);
        std::vector<float> corr(dout);
        for (std::size_t a = a0; a < a1; ++a) {
          std::fill(corr.begin(), corr.end(), 0.0f);
          add_correction(nsim.data() + a * kmax, nbr.data() + a * kmax, k, temp, 1.0f, lc.residuals_.data(), dout,
                         acc.data(), corr.data());
          Dots d{0, 0, 0, 0, 0, 0};
          const float* b = mapped.data() + a * dout;
          const float* t = target.row(a);
          for (std::size_t o = 0; o < dout; ++o) {
            d.bt += double(b[o]) * t[o];
            d.ct += double(corr[o]) * t[o];
            d.bb += double(b[o]) * b[o];
            d.cc += double(corr[o]) * corr[o];
            d.bc += double(b[o]) * corr[o];
            d.tt += double(t[o]) * t[o];
          }
          dots[a] = d;
        }
      });
      for (float w : weights) {
        double sum = 0.0;
        for (const Dots& d : dots) {
          const double yy = d.bb + 2.0 * w * d.bc + double(w) * w * d.cc;
          if (yy > 0.0 && d.tt > 0.0) sum += (d.bt + w * d.ct) / std::sqrt(yy * d.tt);
        }
        const double mean = sum / static_cast<double>(m);
        if (mean > best) {
          best = mean;
          chosen = LocalCorrectionParams{k, temp, w};
        }
      }
    }
  }
  // A fixed neighbour count larger than m - 1 was shortened for leave-one-out only.
  if (options.neighbours) chosen.neighbours = *options.neighbours;
  lc.params_ = chosen;
  lc.loo_cosine_ = chosen.weight == 0.0f ? base_cos : best;  // the same quantity, summed as fit_cosine() sums it
  lc.base_cosine_ = base_cos;
  lc.fitted_ = true;
  return lc;
}

Status LocalCorrection::apply(MatrixView<const float> rows, MatrixView<float> out, int threads) const {
  if (!fitted_) return Status::failed_precondition("local correction: not fitted");
  const std::size_t n = rows.rows, m = basis_.anchors(), dout = dim_out_;
  VECSTASH_RETURN_IF_ERROR(validate_rows(rows, basis_.dim(), "local correction apply"));
  if (n == 0) return Status::ok();
  if (out.rows != n || out.cols != dout || out.data == nullptr || out.stride < out.cols)
    return Status::invalid_argument("local correction apply: output must be " + std::to_string(n) + " x " +
                                    std::to_string(dout));
  if (params_.weight == 0.0f) return Status::ok();
  const std::size_t k = std::min<std::size_t>(params_.neighbours, m);
  const std::size_t blocks = (n + kCosineBlock - 1) / kCosineBlock;
  Status failed;
  cpu::parallel_chunks(blocks, cpu::resolve_threads(threads, blocks), [&](std::size_t b0, std::size_t b1) {
    std::vector<float> cos(std::min(kCosineBlock, n) * m), sims(k);
    std::vector<std::uint32_t> idx;
    std::vector<double> acc(dout);
    for (std::size_t b = b0; b < b1; ++b) {
      const std::size_t r0 = b * kCosineBlock, nb = std::min(kCosineBlock, n - r0);
      const MatrixView<const float> block(rows.row(r0), nb, rows.cols, rows.stride);
      if (!basis_.transform(block, MatrixView<float>(cos.data(), nb, m), 1).is_ok()) {
#pragma omp critical(vecstash_local_apply)
        failed = Status::internal("local correction: cosine transform failed");
        return;
      }
      for (std::size_t i = 0; i < nb; ++i) {
        const float* c = cos.data() + i * m;
        top_k(c, m, k, m, idx);
        for (std::size_t j = 0; j < k; ++j) sims[j] = c[idx[j]];
        add_correction(sims.data(), idx.data(), k, params_.temperature, params_.weight, residuals_.data(), dout,
                       acc.data(), out.row(r0 + i));
      }
    }
  });
  return failed;
}

}  // namespace vecstash::kernels
