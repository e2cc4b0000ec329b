#include "vecstash/api/metrics.h"

#include <fmt/format.h>

namespace vecstash::api {

std::string prometheus_escape(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (const char c : value) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out.push_back(c);
  }
  return out;
}

void Metrics::observe_request(std::string_view route, int status, double seconds) {
  std::lock_guard lock(mu_);
  ++requests_[{std::string(route), status}];
  Histogram& h = latency_[std::string(route)];
  for (std::size_t i = 0; i < kBuckets.size(); ++i) {
    if (seconds <= kBuckets[i]) ++h.buckets[i];
  }
  ++h.count;
  h.sum += seconds;
}

void Metrics::add_upserted(std::string_view collection, std::size_t points) {
  std::lock_guard lock(mu_);
  upserted_[std::string(collection)] += points;
}
void Metrics::add_deleted(std::string_view collection, std::size_t points) {
  std::lock_guard lock(mu_);
  deleted_[std::string(collection)] += points;
}
void Metrics::add_queries(std::string_view collection, std::size_t queries) {
  std::lock_guard lock(mu_);
  queries_[std::string(collection)] += queries;
}
void Metrics::add_rejected(std::string_view reason) {
  std::lock_guard lock(mu_);
  ++rejected_[std::string(reason)];
}
void Metrics::set_in_flight(std::int64_t n) {
  std::lock_guard lock(mu_);
  in_flight_ = n;
}

std::string Metrics::render(const std::vector<CollectionGauge>& gauges) const {
  std::string out;
  auto header = [&out](std::string_view name, std::string_view type, std::string_view help) {
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
  };
  std::lock_guard lock(mu_);
  header("vecstash_http_requests_total", "counter", "HTTP requests answered, by route and status code.");
  for (const auto& [key, n] : requests_) {
    out += fmt::format("vecstash_http_requests_total{{route=\"{}\",status=\"{}\"}} {}\n",
                       prometheus_escape(key.first), key.second, n);
  }
  header("vecstash_http_request_duration_seconds", "histogram", "Time from a parsed request to its response, by route.");
  for (const auto& [route, h] : latency_) {
    const std::string r = prometheus_escape(route);
    for (std::size_t i = 0; i < kBuckets.size(); ++i) {
      out += fmt::format("vecstash_http_request_duration_seconds_bucket{{route=\"{}\",le=\"{}\"}} {}\n", r, kBuckets[i],
                         h.buckets[i]);
    }
    out += fmt::format("vecstash_http_request_duration_seconds_bucket{{route=\"{}\",le=\"+Inf\"}} {}\n", r, h.count);
    out += fmt::format("vecstash_http_request_duration_seconds_sum{{route=\"{}\"}} {}\n", r, h.sum);
    out += fmt::format("vecstash_http_request_duration_seconds_count{{route=\"{}\"}} {}\n", r, h.count);
  }
  header("vecstash_http_requests_rejected_total", "counter", "Requests refused before running (overload, limits).");
  for (const auto& [reason, n] : rejected_) {
    out += fmt::format("vecstash_http_requests_rejected_total{{reason=\"{}\"}} {}\n", prometheus_escape(reason), n);
  }
  header("vecstash_http_requests_in_flight", "gauge", "Requests being handled now.");
  out += fmt::format("vecstash_http_requests_in_flight {}\n", in_flight_);
  auto totals = [&](std::string_view name, std::string_view help, const std::map<std::string, std::uint64_t>& m) {
    header(name, "counter", help);
    for (const auto& [c, n] : m) out += fmt::format("{}{{collection=\"{}\"}} {}\n", name, prometheus_escape(c), n);
  };
  totals("vecstash_points_upserted_total", "Points written by upserts.", upserted_);
  totals("vecstash_points_deleted_total", "Points deleted.", deleted_);
  totals("vecstash_search_queries_total", "Nearest-neighbour queries answered.", queries_);
  header("vecstash_collection_points", "gauge", "Points stored per collection.");
  for (const auto& g : gauges) {
    out += fmt::format("vecstash_collection_points{{collection=\"{}\"}} {}\n", prometheus_escape(g.name), g.points);
  }
  header("vecstash_collection_bytes", "gauge", "In-memory bytes per collection (codes, originals, ids, payloads, index).");
  for (const auto& g : gauges) {
    out += fmt::format("vecstash_collection_bytes{{collection=\"{}\"}} {}\n", prometheus_escape(g.name), g.bytes);
  }
  header("vecstash_collection_code_bytes", "gauge", "Bytes per stored code (0 before calibration).");
  for (const auto& g : gauges) {
    out += fmt::format("vecstash_collection_code_bytes{{collection=\"{}\"}} {}\n", prometheus_escape(g.name),
                       g.code_bytes);
  }
  return out;
}

}  // namespace vecstash::api
