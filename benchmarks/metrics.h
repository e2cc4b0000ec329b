// Accuracy measures of a search result: recall@k against exact neighbours, and nDCG@k against
// graded relevance judgments (BEIR's definition).
//
// Result and truth matrices are nq x (at least k) row ids, best first; id -1 means "no result".
// Thread safety: pure functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "benchmarks/datasets.h"
#include "vecstash/common/status.h"
#include "vecstash/common/types.h"

namespace vecstash::bench {

/// Mean over queries of |found[q][0..k) ∩ truth[q][0..k)| / t, where t is the number of valid
/// (non -1) ids in truth[q][0..k) — normally k; queries with t = 0 are skipped.
/// InvalidArgument when the row counts differ, k is 0, or either side has fewer than k columns.
Result<double> recall_at_k(MatrixView<const std::int64_t> found, MatrixView<const std::int64_t> truth, std::size_t k);

/// nDCG@k of one ranked list: DCG = sum over ranks i = 1..k of rel(found[i]) / log2(i + 1), with the
/// linear gain rel (as BEIR / pytrec_eval's ndcg_cut; not 2^rel - 1), divided by the DCG of the
/// judgments sorted by relevance. 0 when no judgment is positive.
double ndcg_at_k(std::span<const std::int64_t> found, const std::vector<Judgment>& judgments, std::size_t k);

struct NdcgResult {
  double mean = 0.0;          ///< over the evaluated queries
  std::size_t evaluated = 0;  ///< queries with at least one judgment
};

/// Mean nDCG@k over the queries that have judgments (others are skipped).
/// InvalidArgument when qrels does not have one entry per row or found has fewer than k columns.
Result<NdcgResult> mean_ndcg_at_k(MatrixView<const std::int64_t> found, const Qrels& qrels, std::size_t k);

/// Widen int32 ids (ground-truth files) to the int64 ids used by search results.
std::vector<std::int64_t> widen_ids(const Matrix<std::int32_t>& ids);

}  // namespace vecstash::bench
