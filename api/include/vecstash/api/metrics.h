// Server metrics in the Prometheus text exposition format (version 0.0.4): request counts and
// latency histograms per route and status, ingest and search totals per collection, and gauges
// (points, bytes) sampled when /metrics is scraped.
//
// Thread safety: every method may be called from any thread.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace vecstash::api {

/// Sampled per collection when /metrics is rendered.
struct CollectionGauge {
  std::string name;
  std::size_t points = 0;
  std::size_t bytes = 0;  ///< in-memory bytes (codes, originals, ids, payloads, index)
  std::size_t code_bytes = 0;  ///< bytes per stored code (0 before calibration)
};

class Metrics {
 public:
  /// Latency histogram bucket bounds, in seconds.
  static constexpr std::array<double, 14> kBuckets = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                      0.1,    0.25,  0.5,    1.0,   2.5,  5.0,  10.0};

  /// One finished request: `route` is the route pattern ("POST /collections/{name}/points/query").
  void observe_request(std::string_view route, int status, double seconds);
  void add_upserted(std::string_view collection, std::size_t points);
  void add_deleted(std::string_view collection, std::size_t points);
  void add_queries(std::string_view collection, std::size_t queries);
  /// A request refused before it ran: reason "overloaded", "queue_full", "body_too_large", "timeout".
  void add_rejected(std::string_view reason);
  void set_in_flight(std::int64_t n);

  std::string render(const std::vector<CollectionGauge>& gauges) const;

 private:
  struct Histogram {
    std::array<std::uint64_t, kBuckets.size()> buckets{};
    std::uint64_t count = 0;
    double sum = 0;
  };
  mutable std::mutex mu_;
  std::map<std::pair<std::string, int>, std::uint64_t> requests_;  // (route, status)
  std::map<std::string, Histogram> latency_;                       // by route
  std::map<std::string, std::uint64_t> upserted_, deleted_, queries_;
  std::map<std::string, std::uint64_t> rejected_;
  std::int64_t in_flight_ = 0;
};

/// A Prometheus label value with backslash, double quote and newline escaped.
std::string prometheus_escape(std::string_view value);

}  // namespace vecstash::api
