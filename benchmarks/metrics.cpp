#include "benchmarks/metrics.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace vecstash::bench {

Result<double> recall_at_k(MatrixView<const std::int64_t> found, MatrixView<const std::int64_t> truth, std::size_t k) {
  if (k == 0) return Status::invalid_argument("recall@k needs k >= 1");
  if (found.rows != truth.rows) {
    return Status::invalid_argument(
        fmt::format("recall: {} result rows but {} ground-truth rows", found.rows, truth.rows));
  }
  if (found.cols < k || truth.cols < k) {
    return Status::invalid_argument(
        fmt::format("recall@{}: results have {} columns and the ground truth {}", k, found.cols, truth.cols));
  }
  double sum = 0.0;
  std::size_t counted = 0;
  std::vector<std::int64_t> got(k);
  for (std::size_t q = 0; q < found.rows; ++q) {
    std::copy_n(found.row(q), k, got.begin());
    std::sort(got.begin(), got.end());
    got.erase(std::unique(got.begin(), got.end()), got.end());
    std::size_t valid = 0, hits = 0;
    for (std::size_t j = 0; j < k; ++j) {
      const std::int64_t id = truth.row(q)[j];
      if (id < 0) continue;
      ++valid;
      hits += std::binary_search(got.begin(), got.end(), id) ? 1 : 0;
    }
    got.resize(k);
    if (valid == 0) continue;
    sum += static_cast<double>(hits) / static_cast<double>(valid);
    ++counted;
  }
  return counted ? sum / static_cast<double>(counted) : 0.0;
}

double ndcg_at_k(std::span<const std::int64_t> found, const std::vector<Judgment>& judgments, std::size_t k) {
  double dcg = 0.0;
  const std::size_t n = std::min(k, found.size());
  for (std::size_t i = 0; i < n; ++i) {
    if (found[i] < 0) continue;
    for (const Judgment& j : judgments) {
      if (j.row == found[i]) {
        dcg += static_cast<double>(j.relevance) / std::log2(static_cast<double>(i) + 2.0);
        break;
      }
    }
  }
  std::vector<int> ideal;
  for (const Judgment& j : judgments) {
    if (j.relevance > 0) ideal.push_back(j.relevance);
  }
  std::sort(ideal.begin(), ideal.end(), std::greater<>());
  double idcg = 0.0;
  for (std::size_t i = 0; i < std::min(k, ideal.size()); ++i) {
    idcg += static_cast<double>(ideal[i]) / std::log2(static_cast<double>(i) + 2.0);
  }
  return idcg > 0.0 ? dcg / idcg : 0.0;
}

Result<NdcgResult> mean_ndcg_at_k(MatrixView<const std::int64_t> found, const Qrels& qrels, std::size_t k) {
  if (qrels.size() != found.rows) {
    return Status::invalid_argument(
        fmt::format("nDCG: {} result rows but judgments for {} queries", found.rows, qrels.size()));
  }
  if (k == 0 || found.cols < k) {
    return Status::invalid_argument(fmt::format("nDCG@{}: results have {} columns", k, found.cols));
  }
  NdcgResult r;
  double sum = 0.0;
  for (std::size_t q = 0; q < found.rows; ++q) {
    if (qrels[q].empty()) continue;
    sum += ndcg_at_k({found.row(q), k}, qrels[q], k);
    ++r.evaluated;
  }
  r.mean = r.evaluated ? sum / static_cast<double>(r.evaluated) : 0.0;
  return r;
}

std::vector<std::int64_t> widen_ids(const Matrix<std::int32_t>& ids) { return {ids.data.begin(), ids.data.end()}; }

}  // namespace vecstash::bench
