// `vecstash bench search`: collections end to end on a data set. For each configuration (code kind,
// exact or approximate index, with or without rescoring, originals kept or codes only) it measures
// ingest rate into a fresh engine (synced or bulk writes), query throughput and recall@k against the
// exact float32 neighbours, and memory per vector; in the same run it measures the FAISS indexes a
// user would otherwise pick (IndexFlat, IndexHNSWFlat, IndexScalarQuantizer SQ8) on the same data.
#pragma once

#include <cstddef>
#include <filesystem>
#include <string>
#include <vector>

#include "benchmarks/datasets.h"
#include "vecstash/common/status.h"

namespace vecstash::bench {

struct SearchBenchOptions {
  /// Code kinds of the exact configurations.
  std::vector<std::string> kinds = {"f32", "e4m3", "i8", "b1"};
  /// Approximate configurations: "KIND:INDEX" (e.g. "i8:HNSW32", "b1:BHNSW32"); empty = none.
  std::vector<std::string> approximate = {"i8:HNSW32", "e4m3:HNSW32", "b1:BHNSW32"};
  std::size_t k = 10;
  double oversampling = 4.0;
  std::vector<int> hnsw_ef = {64, 128};
  int threads = 1;                      ///< kernel threads (FAISS and OpenBLAS get the same)
  std::size_t calibration_sample = 10000;
  int hnsw_ef_construction = 0;         ///< HNSW build breadth of the approximate collections (0: FAISS's 40)
  std::size_t bulk_batch = 4096;        ///< points per upsert in bulk (relaxed) mode
  std::size_t synced_batch = 256;       ///< points per upsert in synced mode
  bool peers = true;                    ///< run the FAISS references
  std::size_t sq8_queries = 200;        ///< FAISS SQ8's flat scan is slow: fewer queries for it
  double min_time = 0.5;                ///< repeat each query batch for at least this long (best run)
  std::filesystem::path work_dir;       ///< databases are created (and removed) under it
};

struct SearchBenchRow {
  std::string dataset;
  std::string system;   ///< "vecstash" or "faiss"
  std::string config;   ///< e.g. "i8 exact +rescore", "IndexHNSWFlat M32 ef64"
  std::string ingest;   ///< "bulk", "synced", or "" for rows that only search
  double ingest_vps = 0.0;    ///< vectors per second (ingest + calibration + index build)
  double qps = 0.0;           ///< queries per second, batch of all queries
  double recall = 0.0;        ///< recall@k against exact float32
  double bytes_per_vector = 0.0;  ///< memory held by the collection / index per vector
  double code_bytes = 0.0;        ///< the code alone
  double id_bytes = 0.0;          ///< id map overhead per vector (part of bytes_per_vector)
  double reopen_s = 0.0;          ///< closing and reopening the engine (0 = not measured)
  std::size_t queries = 0;
};

Result<std::vector<SearchBenchRow>> run_search_bench(const Dataset& dataset, const SearchBenchOptions& options);
std::string format_search_table(const std::vector<SearchBenchRow>& rows);
std::string search_rows_to_csv(const std::vector<SearchBenchRow>& rows);

}  // namespace vecstash::bench
