#include "client_commands.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <strings.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iterator>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "ingest_readers.h"
#include "vecstash/api/client.h"
#include "vecstash/engine/anchors.h"

namespace vecstash::tools {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// ---- talking to the server ---------------------------------------------------------------------

/// A path segment for a URL: unreserved characters as they are, everything else percent-encoded.
std::string encode_segment(std::string_view s) {
  std::string out;
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (std::isalnum(c) || ch == '-' || ch == '.' || ch == '_' || ch == '~') {
      out += ch;
    } else {
      out += fmt::format("%{:02X}", c);
    }
  }
  return out;
}

std::string collection_path(const std::string& name, std::string_view rest = {}) {
  return "/collections/" + encode_segment(name) + std::string(rest);
}

/// The server's message: {"status": {"error": "..."}}, else the start of the body.
std::string error_text(const api::Response& r) {
  const json body = json::parse(r.body, nullptr, /*allow_exceptions=*/false);
  const json::json_pointer p("/status/error");
  if (!body.is_discarded() && body.contains(p) && body.at(p).is_string()) return body.at(p).get<std::string>();
  std::string text = r.body.substr(0, 200);
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.pop_back();
  return text.empty() ? "(no message)" : text;
}

Status status_from_http(int http, const std::string& message) {
  std::string m = fmt::format("HTTP {}: {}", http, message);
  switch (http) {
    case 400:
      return Status::invalid_argument(std::move(m));
    case 401:
    case 403:
      return Status::failed_precondition(std::move(m) + " (check --api-key)");
    case 404:
      return Status::not_found(std::move(m));
    case 409:
      return Status::already_exists(std::move(m));
    case 413:
    case 429:
      return Status::resource_exhausted(std::move(m));
    case 503:
      return Status::unavailable(std::move(m));
    default:
      return Status::internal(std::move(m));
  }
}

/// Seconds from a Retry-After header, when the server sent one.
std::optional<double> retry_after(const api::Response& r) {
  for (const auto& [name, value] : r.headers) {
    if (name.size() != 11 || strncasecmp(name.c_str(), "retry-after", 11) != 0) continue;
    char* end = nullptr;
    const double s = std::strtod(value.c_str(), &end);
    if (end != value.c_str() && std::isfinite(s) && s >= 0) return std::min(s, 30.0);
  }
  return std::nullopt;
}

/// One request: the `result` of a 2xx answer (the whole body when it has no envelope), or the
/// server's error as a Status. An overloaded server (429, 503) is given a few more tries.
Result<json> call(api::HttpClient& client, api::Method method, const std::string& target,
                  const std::string& body = {}) {
  constexpr int kRetries = 4;
  for (int attempt = 0;; ++attempt) {
    auto r = client.request(method, target, body);
    if (!r.is_ok()) return r.status();
    const int http = r->status;
    if ((http == 429 || http == 503) && attempt < kRetries) {
      const double wait = retry_after(*r).value_or(0.5 * (1 << attempt));
      spdlog::warn("server busy ({} {}: {}); retrying in {:.1f} s", api::to_string(method), target, error_text(*r),
                   wait);
      std::this_thread::sleep_for(std::chrono::duration<double>(wait));
      continue;
    }
    if (http < 200 || http > 299) return status_from_http(http, error_text(*r));
    json j = json::parse(r->body, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) return Status::internal(fmt::format("the answer to {} is not JSON", target));
    if (j.is_object() && j.contains("result")) return std::move(j["result"]);
    return j;
  }
}

Result<std::unique_ptr<api::HttpClient>> connect(const ConnectionArgs& c) {
  api::ClientOptions o;
  o.api_key = c.api_key;
  o.timeout_s = c.timeout_s;
  return api::HttpClient::create(c.url, o);
}

/// The value at a JSON pointer, or null when any part of the path is missing.
const json& at_path(const json& j, const char* pointer) {
  static const json kNull;
  const json::json_pointer p(pointer);
  return j.contains(p) ? j.at(p) : kNull;
}

/// o[key] when o is an object that has it, otherwise null (never throws, whatever the server sent).
const json& field(const json& o, const char* key) {
  static const json kNull;
  if (!o.is_object()) return kNull;
  const auto it = o.find(key);
  return it == o.end() ? kNull : *it;
}

double number_or(const json& v, double def) { return v.is_number() ? v.get<double>() : def; }

/// Strings without quotes, null as "-", everything else as JSON.
std::string text(const json& v) {
  if (v.is_null()) return "-";
  if (v.is_string()) return v.get<std::string>();
  return v.dump();
}

/// The dimension of the collection's (one) vector from CollectionInfo: plain or named params.
Result<std::size_t> vector_size(const json& info) {
  const json& v = at_path(info, "/config/params/vectors");
  const json* params = &v;
  if (v.is_object() && !v.contains("size") && v.size() == 1) params = &v.begin().value();
  if (!params->is_object() || !params->contains("size") || !(*params)["size"].is_number_unsigned()) {
    return Status::internal("the collection info has no vector size (config.params.vectors.size)");
  }
  return (*params)["size"].get<std::size_t>();
}

std::string vector_distance(const json& info) {
  const json& v = at_path(info, "/config/params/vectors");
  if (v.is_object() && v.contains("distance")) return text(v["distance"]);
  if (v.is_object() && v.size() == 1 && v.begin()->is_object()) return text(field(v.begin().value(), "distance"));
  return "-";
}

/// GET /collections/{c}; a missing collection says so plainly.
Result<json> get_collection(api::HttpClient& client, const ConnectionArgs& c, const std::string& name) {
  auto info = call(client, api::Method::kGet, collection_path(name));
  if (!info.is_ok() && info.status().code() == StatusCode::kNotFound) {
    return Status::not_found(fmt::format("collection '{}' does not exist at {}", name, c.url));
  }
  return info;
}

void add_connection_options(CLI::App* cmd, ConnectionArgs& c) {
  cmd->add_option("--url", c.url, "Server address, http://HOST:PORT")->capture_default_str()->envname("VECSTASH_URL");
  cmd->add_option("--api-key", c.api_key, "API key, sent as the api-key header")->envname("VECSTASH_API_KEY");
  cmd->add_option("--timeout", c.timeout_s, "Seconds to wait for each answer")
      ->capture_default_str()
      ->check(CLI::Range(1, 86400));
}

/// Shortest decimal text that reads back as the same float32 ("0.1", not "0.10000000149011612").
void append_float(std::string& out, float v) { fmt::format_to(std::back_inserter(out), "{}", v); }

json float_array(const float* v, std::size_t n) {
  std::string s = "[";
  for (std::size_t i = 0; i < n; ++i) {
    if (i) s += ',';
    append_float(s, v[i]);
  }
  s += ']';
  return json::parse(s);
}

// ---- output helpers ----------------------------------------------------------------------------

/// At most `max_chars` UTF-8 characters of `s`, with "…" when cut.
std::string truncate_utf8(const std::string& s, std::size_t max_chars) {
  std::size_t chars = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xC0) == 0x80) continue;  // continuation byte
    if (chars == max_chars) return s.substr(0, i) + "…";
    ++chars;
  }
  return s;
}

/// A plain text table; `right` marks right-aligned columns. The last column is not padded.
void print_table(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows,
                 const std::vector<bool>& right) {
  std::vector<std::size_t> width(header.size());
  for (std::size_t c = 0; c < header.size(); ++c) {
    width[c] = header[c].size();
    for (const auto& r : rows) width[c] = std::max(width[c], r[c].size());
  }
  auto line = [&](const std::vector<std::string>& cells) {
    std::string out;
    for (std::size_t c = 0; c < cells.size(); ++c) {
      if (c) out += "  ";
      if (c + 1 == cells.size() && !right[c]) {
        out += cells[c];
      } else if (right[c]) {
        out += fmt::format("{:>{}}", cells[c], width[c]);
      } else {
        out += fmt::format("{:<{}}", cells[c], width[c]);
      }
    }
    while (!out.empty() && out.back() == ' ') out.pop_back();
    std::fputs((out + "\n").c_str(), stdout);
  };
  line(header);
  for (const auto& r : rows) line(r);
}

std::string human_bytes(double b) {
  static const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (b >= 1024.0 && u < 4) {
    b /= 1024.0;
    ++u;
  }
  return u == 0 ? fmt::format("{:.0f} B", b) : fmt::format("{:.1f} {}", b, kUnits[u]);
}

std::string duration_text(double s) {
  if (!std::isfinite(s)) return "?";
  if (s < 60) return fmt::format("{:.0f} s", s);
  const auto total = static_cast<long long>(s + 0.5);
  if (total < 3600) return fmt::format("{}:{:02}", total / 60, total % 60);
  return fmt::format("{}:{:02}:{:02}", total / 3600, total / 60 % 60, total % 60);
}

/// Progress of a long upload on stderr: redrawn in place on a terminal, a log line every few seconds
/// otherwise. Silent with --quiet. Without a total (a file that does not tell its rows up front) it
/// shows the points so far and the rate, with no percentage or ETA.
class Progress {
 public:
  explicit Progress(std::optional<std::size_t> total)
      : total_(total),
        enabled_(spdlog::default_logger_raw()->should_log(spdlog::level::info)),
        tty_(isatty(fileno(stderr)) != 0),
        start_(Clock::now()),
        last_(start_) {}

  /// `done` points so far; `last`: the upload is over (a terminal shows the final count).
  void update(std::size_t done, bool last = false) {
    if (!enabled_) return;
    const auto now = Clock::now();
    const double since = std::chrono::duration<double>(now - last_).count();
    const bool complete = last || (total_ && done >= *total_);
    if (!complete && since < (tty_ ? 0.1 : 5.0)) return;
    last_ = now;
    const double elapsed = std::max(1e-9, std::chrono::duration<double>(now - start_).count());
    const double rate = static_cast<double>(done) / elapsed;
    if (!total_) {
      if (tty_) {
        std::fputs(fmt::format("\r{} points  {:.0f} points/s\x1b[K", done, rate).c_str(), stderr);
        drawn_ = true;
      } else if (!complete) {
        spdlog::info("{} points, {:.0f} points/s", done, rate);
      }
      return;
    }
    const std::size_t total = *total_;
    const std::size_t left = total > done ? total - done : 0;
    const double eta = rate > 0 ? static_cast<double>(left) / rate : INFINITY;
    const double pct = total ? std::min(100.0, 100.0 * static_cast<double>(done) / static_cast<double>(total)) : 100.0;
    if (tty_) {
      constexpr int kWidth = 30;
      const int filled = static_cast<int>(pct / 100.0 * kWidth);
      const std::string bar = std::string(filled, '#') + std::string(kWidth - filled, '.');
      std::fputs(fmt::format("\r[{}] {}/{} points {:3.0f}%  {:.0f} points/s  ETA {}\x1b[K", bar, done, total, pct, rate,
                             duration_text(eta))
                     .c_str(),
                 stderr);
      drawn_ = true;
    } else if (!complete) {
      spdlog::info("{}/{} points ({:.0f}%), {:.0f} points/s, ETA {}", done, total, pct, rate, duration_text(eta));
    }
  }
  /// Ends the in-place line (call before printing anything else).
  void finish() {
    if (drawn_) std::fputc('\n', stderr);
    drawn_ = false;
  }

 private:
  std::optional<std::size_t> total_;
  bool enabled_;
  bool tty_;
  bool drawn_ = false;
  Clock::time_point start_;
  Clock::time_point last_;
};

// ---- ingest ------------------------------------------------------------------------------------

/// {"points":[{"id":..,"vector":[..],"payload":{..}}, ...]} for the rows of a block; a row without an id
/// of its own gets `first_id` + its index in the block.
void build_points_body(const VectorFile& f, std::uint64_t first_id, std::string* body) {
  body->clear();
  *body += "{\"points\":[";
  for (std::size_t r = 0; r < f.rows; ++r) {
    if (r != 0) *body += ',';
    *body += "{\"id\":";
    if (!f.ids.empty() && !f.ids[r].is_null()) {
      *body += f.ids[r].dump();
    } else {
      fmt::format_to(std::back_inserter(*body), "{}", first_id + r);
    }
    *body += ",\"vector\":[";
    const float* v = f.row(r);
    for (std::size_t c = 0; c < f.dim; ++c) {
      if (c) *body += ',';
      append_float(*body, v[c]);
    }
    *body += ']';
    if (!f.payloads.empty() && !f.payloads[r].is_null()) {
      *body += ",\"payload\":";
      *body += f.payloads[r].dump(-1, ' ', false, json::error_handler_t::replace);
    }
    *body += '}';
  }
  *body += "]}";
}

/// Rows without an id of their own get start_id + row: rows 0 .. rows - 1 must stay within 64 bits.
/// InvalidArgument naming the first row that would not.
Status check_start_id(std::uint64_t start_id, std::size_t rows) {
  const std::uint64_t last_row_that_fits = std::numeric_limits<std::uint64_t>::max() - start_id;
  if (rows == 0 || rows - 1 <= last_row_that_fits) return Status::ok();
  return Status::invalid_argument(
      fmt::format("--start-id {}: the id of row {} would pass 2^64 - 1", start_id, last_row_that_fits + 1));
}

/// A set of 64-bit values: open addressing with linear probing in one array kept at most half full
/// (16 to 32 bytes per value, where std::unordered_set takes about 40). The values should be hashes:
/// their low bits pick the slot.
class HashSet64 {
 public:
  /// True when `v` was not in the set yet.
  bool insert(std::uint64_t v) {
    if (v == 0) v = 1;  // 0 marks an empty slot
    if ((size_ + 1) * 2 > slots_.size()) grow();
    const std::size_t mask = slots_.size() - 1;
    for (std::size_t i = static_cast<std::size_t>(v) & mask;; i = (i + 1) & mask) {
      if (slots_[i] == v) return false;
      if (slots_[i] == 0) {
        slots_[i] = v;
        ++size_;
        return true;
      }
    }
  }

 private:
  void grow() {
    std::vector<std::uint64_t> old = std::move(slots_);
    slots_.assign(std::max<std::size_t>(1024, old.size() * 2), 0);
    size_ = 0;
    for (const std::uint64_t v : old) {
      if (v != 0) insert(v);
    }
  }

  std::vector<std::uint64_t> slots_;
  std::size_t size_ = 0;
};

static_assert(sizeof(std::size_t) == 8, "RepeatedIds keeps 64-bit hashes");

/// Counts the rows whose point id repeats an earlier row's (the server keeps the later one), a block at a
/// time, by 64-bit hashes of the ids' JSON text: two different ids with the same hash (odds about 2^-64
/// per pair) would count as one repeat too many. Rows numbered from --start-id cannot repeat one
/// another, so a file without ids of its own (.fvecs, .npy, JSONL without "id") keeps nothing; the
/// numbered rows before the first row with an id (start_id .. start_id + k - 1) are checked by range, and
/// numbered rows after it are remembered like the others.
/// Thread safety: one thread at a time.
class RepeatedIds {
 public:
  explicit RepeatedIds(std::uint64_t start_id) : start_id_(start_id) {}

  /// The rows of `block`, which are the file's rows first_row, first_row + 1, ... InvalidArgument when
  /// a row without an id would get one past 2^64 - 1.
  Status add(const VectorFile& block, std::size_t first_row) {
    for (std::size_t i = 0; i < block.rows; ++i) {
      const std::size_t row = first_row + i;
      if (block.ids.empty() || block.ids[i].is_null()) {
        VECSTASH_RETURN_IF_ERROR(check_start_id(start_id_, row + 1));
        if (!any_own_id_) {
          leading_numbered_ = row + 1;
          continue;
        }
        const auto text = fmt::format_int(start_id_ + row);
        if (!seen_.insert(hash({text.data(), text.size()}))) ++repeated_;
        continue;
      }
      any_own_id_ = true;
      const json& id = block.ids[i];
      const bool repeats_leading = id.is_number_unsigned() && id.get<std::uint64_t>() >= start_id_ &&
                                   id.get<std::uint64_t>() - start_id_ < leading_numbered_;
      const bool fresh = seen_.insert(hash(id.dump()));
      if (repeats_leading || !fresh) ++repeated_;
    }
    return Status::ok();
  }

  std::size_t repeated() const { return repeated_; }

 private:
  static std::uint64_t hash(std::string_view text) { return std::hash<std::string_view>{}(text); }

  std::uint64_t start_id_;
  bool any_own_id_ = false;
  std::size_t leading_numbered_ = 0;  ///< rows before the first row with an id of its own
  std::size_t repeated_ = 0;
  HashSet64 seen_;
};

/// --settings as a JSON object (empty without it); InvalidArgument for bad JSON or a --kind it contradicts.
Result<json> ingest_settings(const IngestArgs& a) {
  if (a.settings.empty()) return json::object();
  json settings = json::parse(a.settings, nullptr, /*allow_exceptions=*/false);
  if (settings.is_discarded() || !settings.is_object()) {
    return Status::invalid_argument(
        fmt::format("--settings must be a JSON object, e.g. '{{\"pca\":{{\"components\":64}}}}'; got: {}", a.settings));
  }
  const json& kind = at_path(settings, "/codec/kind");
  if (a.kind && !kind.is_null() && kind != *a.kind) {
    return Status::invalid_argument(
        fmt::format("--kind {} contradicts --settings codec.kind {}", *a.kind, kind.dump()));
  }
  return settings;
}

/// With --create: checks that the collection does not exist yet (nullopt). Without: the dimension of the
/// existing collection. Errors carry the message to print.
Result<std::optional<std::size_t>> check_target_collection(api::HttpClient& http, const IngestArgs& a) {
  if (a.create) {
    auto exists = call(http, api::Method::kGet, collection_path(a.collection, "/exists"));
    if (!exists.is_ok()) {
      return Status(exists.status().code(), fmt::format("{}: {}", a.connection.url, exists.status().message()));
    }
    if (field(*exists, "exists") == true) {
      return Status::already_exists(
          fmt::format("collection '{}' already exists at {}: leave out --create to add points to it", a.collection,
                      a.connection.url));
    }
    return std::optional<std::size_t>();
  }
  auto info = get_collection(http, a.connection, a.collection);
  if (!info.is_ok()) {
    const bool missing = info.status().code() == StatusCode::kNotFound;
    return Status(info.status().code(), info.status().message() + (missing ? " (add --create to create it)" : ""));
  }
  auto dim = vector_size(*info);
  if (!dim.is_ok()) return dim.status();
  return std::optional<std::size_t>(*dim);
}

/// PUT the new collection: vectors of `dim` values, --distance, and the vecstash settings (--kind, i8 by
/// default, with --settings merged in).
Status create_collection(api::HttpClient& http, const IngestArgs& a, const json& settings, std::size_t dim) {
  json ours = {{"codec", {{"kind", a.kind.value_or("i8")}}}};
  ours.merge_patch(settings);
  const json body = {{"vectors", {{"size", dim}, {"distance", a.distance}}}, {"vecstash", ours}};
  auto created = call(http, api::Method::kPut, collection_path(a.collection), body.dump());
  if (!created.is_ok()) {
    if (created.status().code() == StatusCode::kAlreadyExists) {
      return Status::already_exists(
          fmt::format("collection '{}' already exists at {}: leave out --create to add points to it", a.collection,
                      a.connection.url));
    }
    return Status(created.status().code(),
                  fmt::format("cannot create collection '{}': {}", a.collection, created.status().message()));
  }
  spdlog::info("created collection '{}': {} dimensions, {}, vecstash settings {}", a.collection, dim, a.distance,
               ours.dump());
  return Status::ok();
}

/// What upload_points did.
struct UploadTotals {
  std::size_t points = 0;    ///< acknowledged by the server
  std::size_t batches = 0;   ///< requests acknowledged
  std::size_t repeated = 0;  ///< rows that repeat an earlier row's id
  double read_s = 0;         ///< seconds spent reading the file
};

/// Reads the stream a --batch of rows at a time and upserts each block before reading the next, so the
/// client holds one block and one request body. On a failure logs what failed and how many points were
/// acknowledged before it; returns the exit code.
int upload_points(api::HttpClient& http, const IngestArgs& a, VectorStream& stream, UploadTotals* totals) {
  const std::string target = collection_path(a.collection, a.no_wait ? "/points?wait=false" : "/points?wait=true");
  const std::optional<std::size_t> total = stream.total_rows();
  Progress progress(total);
  // Ends the progress line, prints the error and how many points the server had acknowledged.
  const auto fail = [&](int exit_code, const std::string& message) {
    progress.finish();
    spdlog::error("{}", message);
    if (total) {
      spdlog::error("{} of {} points were acknowledged before the failure", totals->points, *total);
    } else {
      spdlog::error("{} points were acknowledged before the failure", totals->points);
    }
    return exit_code;
  };
  RepeatedIds ids(a.start_id);
  VectorFile block;
  std::string body;
  while (true) {
    const std::size_t first = stream.rows_read();
    const auto read_start = Clock::now();
    const Status read = stream.next(a.batch, &block);
    totals->read_s += seconds_since(read_start);
    if (!read.is_ok()) return fail(kExitFailure, read.message());
    if (block.rows == 0) break;
    if (const Status s = ids.add(block, first); !s.is_ok()) return fail(kExitUsage, s.message());
    build_points_body(block, a.start_id + first, &body);
    auto r = call(http, api::Method::kPut, target, body);
    if (!r.is_ok()) {
      // A server refusing an oversized body (413) closes the connection while the body is still being
      // sent, so the client sees only a broken connection: say what is likely.
      const bool big = r.status().code() == StatusCode::kUnavailable && body.size() > (std::size_t{1} << 20);
      return fail(kExitFailure,
                  fmt::format("batch {} (rows {} to {}) failed: {}{}", totals->batches + 1, first,
                              first + block.rows - 1, r.status().message(),
                              big ? fmt::format(" (the request had {:.1f} MiB: the server may refuse bodies that "
                                                "large, max_body_mb is 32 by default; try a smaller --batch)",
                                                static_cast<double>(body.size()) / (1 << 20))
                                  : std::string()));
    }
    totals->points += block.rows;
    ++totals->batches;
    progress.update(totals->points);
  }
  progress.update(totals->points, /*last=*/true);
  progress.finish();
  totals->repeated = ids.repeated();
  return 0;
}

/// --calibrate: calibrates the collection now unless it already is. Errors carry the message to print.
Status calibrate_after_upload(api::HttpClient& http, const IngestArgs& a) {
  auto info = get_collection(http, a.connection, a.collection);
  if (!info.is_ok()) {
    return Status(info.status().code(), fmt::format("after the upload: {}", info.status().message()));
  }
  if (at_path(*info, "/config/vecstash/state/calibrated") == true) {
    spdlog::info("'{}' is already calibrated (generation {})", a.collection,
                 text(at_path(*info, "/config/vecstash/state/generation")));
    return Status::ok();
  }
  const auto cal_start = Clock::now();
  auto cal = call(http, api::Method::kPost, collection_path(a.collection, "/calibration"));
  if (!cal.is_ok()) {
    return Status(cal.status().code(),
                  fmt::format("calibration of '{}' failed: {}", a.collection, cal.status().message()));
  }
  spdlog::info("calibrated '{}' on its {} points in {:.2f} s: codes of {} dimensions, {} bytes each", a.collection,
               text(field(*info, "points_count")), seconds_since(cal_start), text(at_path(*cal, "/code_dim")),
               text(at_path(*cal, "/code_bytes")));
  return Status::ok();
}

}  // namespace

CLI::App* add_ingest_command(CLI::App& app, IngestArgs& args) {
  CLI::App* cmd = app.add_subcommand(
      "ingest", "Upload vectors from a file (.fvecs, .bvecs, .npy, .jsonl) to a collection of a running server");
  cmd->fallthrough();
  add_connection_options(cmd, args.connection);
  cmd->add_option("--collection", args.collection, "Collection name")->required();
  cmd->add_option("--file", args.file, "Vector file")->required()->check(CLI::ExistingFile);
  cmd->add_option("--format", args.format,
                  "File format; auto goes by the name (.fvecs[.gz], .bvecs[.gz], .npy, .jsonl)")
      ->capture_default_str()
      ->check(CLI::IsMember({"auto", "fvecs", "bvecs", "npy", "jsonl"}));
  cmd->add_option("--batch", args.batch, "Points per upsert request")
      ->capture_default_str()
      ->check(CLI::Range(std::size_t{1}, std::size_t{100000}));
  auto* create = cmd->add_flag("--create", args.create,
                               "Create the collection first (its dimension from the file); fails if it exists");
  cmd->add_option("--distance", args.distance, "Distance of a new collection: Cosine, Dot or Euclid")
      ->capture_default_str()
      ->transform(CLI::IsMember({"Cosine", "Dot", "Euclid"}, CLI::ignore_case))
      ->needs(create);
  cmd->add_option("--kind", args.kind, "Code kind of a new collection: i8, e4m3, e5m2, f16, bf16, b1, f32 [i8]")
      ->check(CLI::IsMember({"i8", "e4m3", "e5m2", "f16", "bf16", "b1", "f32"}))
      ->needs(create);
  cmd->add_option("--settings", args.settings,
                  "JSON merged into the new collection's \"vecstash\" settings, e.g. "
                  "'{\"pca\":{\"components\":64},\"calibration_sample\":5000,\"index\":\"HNSW32\"}'")
      ->needs(create);
  cmd->add_option("--limit", args.limit, "Upload only the first N rows (0: all)")->capture_default_str();
  cmd->add_option("--start-id", args.start_id, "Id of the first row; rows count up from it (JSONL ids win)")
      ->capture_default_str();
  cmd->add_flag("--no-wait", args.no_wait,
                "Send wait=false (Qdrant may answer before a batch is applied; vecstash applies it either way)");
  cmd->add_flag("--calibrate", args.calibrate,
                "After the upload, calibrate the codes now if the collection is not calibrated yet (it calibrates "
                "by itself once calibration_sample points arrived)");
  cmd->footer(
      "JSONL: one object per line, {\"id\": 7 or \"<uuid>\", \"vector\": [..], \"payload\": {..}}; id and payload\n"
      "are optional. .npy: a 2-D float32 or float64 array in C order. Exit status: 0 done, 1 failed (the\n"
      "server's message and the points acknowledged before are printed), 2 bad flags.");
  return cmd;
}

int run_ingest(const IngestArgs& a) {
  auto format = parse_vector_format(a.format);
  if (!format.is_ok()) {
    spdlog::error("--format: {}", format.status().message());
    return kExitUsage;
  }
  auto settings = ingest_settings(a);
  if (!settings.is_ok()) {
    spdlog::error("{}", settings.status().message());
    return kExitUsage;
  }
  auto client = connect(a.connection);
  if (!client.is_ok()) {
    spdlog::error("--url: {}", client.status().message());
    return kExitUsage;
  }
  api::HttpClient& http = *client.value();

  // The collection is checked before the file is opened, so a typo fails fast.
  auto collection_dim = check_target_collection(http, a);
  if (!collection_dim.is_ok()) {
    spdlog::error("{}", collection_dim.status().message());
    return kExitFailure;
  }

  ReadOptions ro;
  ro.format = *format;
  ro.max_rows = a.limit;
  auto opened = VectorStream::open(a.file, ro);
  if (!opened.is_ok()) {
    spdlog::error("{}", opened.status().message());
    return kExitFailure;
  }
  VectorStream& stream = **opened;
  const std::optional<std::size_t> total = stream.total_rows();
  spdlog::info("reading {} ({}): vectors of dimension {}{}", a.file, to_string(stream.format()), stream.dim(),
               total ? fmt::format(", {} rows", *total) : std::string());
  if (*collection_dim) {
    if (const Status s = check_dimension(stream.dim(), **collection_dim, fmt::format("collection '{}'", a.collection));
        !s.is_ok()) {
      spdlog::error("{}", s.message());
      return kExitFailure;
    }
  }
  // A file that tells its rows up front has no ids of its own (.npy, .fvecs, .bvecs): every row is
  // numbered from --start-id, so an overflow shows before anything is sent (else as the rows arrive).
  if (total) {
    if (const Status s = check_start_id(a.start_id, *total); !s.is_ok()) {
      spdlog::error("{}", s.message());
      return kExitUsage;
    }
  }
  if (a.create) {
    if (const Status s = create_collection(http, a, *settings, stream.dim()); !s.is_ok()) {
      spdlog::error("{}", s.message());
      return kExitFailure;
    }
  }

  const auto upload_start = Clock::now();
  UploadTotals totals;
  if (const int rc = upload_points(http, a, stream, &totals); rc != 0) return rc;
  const double upload_s = seconds_since(upload_start);
  spdlog::info("read {} vectors of dimension {} from {} ({}) in {:.2f} s", totals.points, stream.dim(), a.file,
               to_string(stream.format()), totals.read_s);
  if (totals.repeated > 0) {
    spdlog::warn("{} rows repeat the id of an earlier row: the later row replaces the earlier point", totals.repeated);
  }

  if (a.calibrate) {
    if (const Status s = calibrate_after_upload(http, a); !s.is_ok()) {
      spdlog::error("{}", s.message());
      return kExitFailure;
    }
  }
  std::fputs(fmt::format("ingested {} points into '{}': {} {} in {:.2f} s, {:.0f} points/s\n", totals.points,
                         a.collection, totals.batches, totals.batches == 1 ? "batch" : "batches", upload_s,
                         upload_s > 0 ? static_cast<double>(totals.points) / upload_s : 0.0)
                 .c_str(),
             stdout);
  return 0;
}

// ---- query -------------------------------------------------------------------------------------

namespace {

/// "[0.1, 0.2]" (or the same without brackets) as finite float32 values.
Result<std::vector<float>> parse_vector_arg(const std::string& s) {
  const auto first = s.find_first_not_of(" \t\n");
  const bool bracketed = first != std::string::npos && s[first] == '[';
  const json v = json::parse(bracketed ? s : "[" + s + "]", nullptr, /*allow_exceptions=*/false);
  if (v.is_discarded() || !v.is_array() || v.empty()) {
    return Status::invalid_argument("--vector must be a JSON array of numbers, e.g. \"[0.1, 0.2, 0.3]\"");
  }
  std::vector<float> out;
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (!v[i].is_number()) return Status::invalid_argument(fmt::format("--vector: value {} is not a number", i));
    const double d = v[i].get<double>();
    if (!std::isfinite(d) || std::fabs(d) > std::numeric_limits<float>::max()) {
      return Status::invalid_argument(fmt::format("--vector: value {} ({}) is not a finite float32 number", i, d));
    }
    out.push_back(static_cast<float>(d));
  }
  return out;
}

void print_hits(const json& points, bool with_payload) {
  if (!points.is_array() || points.empty()) {
    std::fputs("(no results)\n", stdout);
    return;
  }
  std::vector<std::string> header = {"rank", "id", "score"};
  if (with_payload) header.push_back("payload");
  std::vector<std::vector<std::string>> rows;
  for (std::size_t i = 0; i < points.size(); ++i) {
    const json& p = points[i];
    std::vector<std::string> row = {std::to_string(i + 1), text(field(p, "id")),
                                    fmt::format("{:.5f}", number_or(field(p, "score"), NAN))};
    if (with_payload) {
      const json payload = field(p, "payload");
      row.push_back(
          payload.is_null() ? "-" : truncate_utf8(payload.dump(-1, ' ', false, json::error_handler_t::replace), 110));
    }
    rows.push_back(std::move(row));
  }
  print_table(header, rows, {true, false, true, false});
}

}  // namespace

CLI::App* add_query_command(CLI::App& app, QueryArgs& args) {
  CLI::App* cmd =
      app.add_subcommand("query", "Nearest neighbours of a vector, or of rows of a vector file, on a running server");
  cmd->fallthrough();
  add_connection_options(cmd, args.connection);
  cmd->add_option("--collection", args.collection, "Collection name")->required();
  auto* vec = cmd->add_option("--vector", args.vector, "The query vector as JSON, e.g. \"[0.1, 0.2, 0.3]\"");
  auto* file =
      cmd->add_option("--file", args.file, "Take the query vectors from this file (.fvecs, .bvecs, .npy, .jsonl)")
          ->check(CLI::ExistingFile);
  vec->excludes(file);
  cmd->add_option("--format", args.format, "Format of --file; auto goes by the name")
      ->capture_default_str()
      ->check(CLI::IsMember({"auto", "fvecs", "bvecs", "npy", "jsonl"}))
      ->needs(file);
  cmd->add_option("--row", args.row, "First row of --file to query with (0-based)")->capture_default_str()->needs(file);
  cmd->add_option("--rows", args.rows, "Number of rows from --row on (several: one batch request)")
      ->capture_default_str()
      ->check(CLI::Range(std::size_t{1}, std::size_t{1000}))
      ->needs(file);
  cmd->add_option("--limit", args.limit, "Results per query")
      ->capture_default_str()
      ->check(CLI::Range(std::size_t{1}, std::size_t{4096}));
  cmd->add_option("--filter", args.filter,
                  "Qdrant filter as JSON, e.g. '{\"must\":[{\"key\":\"lang\",\"match\":{\"value\":\"en\"}}]}'");
  cmd->add_flag("--with-payload", args.with_payload, "Show each result's payload");
  cmd->add_flag("--exact", args.exact, "Exact scan of the codes, bypassing an approximate index");
  cmd->add_flag("--json", args.json, "Print the server's result as JSON instead of a table");
  auto* using_name =
      cmd->add_option("--using", args.using_name,
                      "Search another space: a model registered with `vecstash model register` (the "
                      "query is that model's embedding) or the relative vector (see `vecstash anchors`)");
  cmd->add_option("--method", args.method, "With a model: how to answer (default: the model's own method)")
      ->check(CLI::IsMember(engine::cross_method_names()))
      ->needs(using_name);
  cmd->add_flag("--relative-input", args.relative_input,
                "With the relative vector: the query already is a relative vector (one value per anchor)")
      ->needs(using_name);
  cmd->add_option("--hubness-weight", args.hubness_weight,
                  "With a model: weight of the hubness correction in [0, 2], 0 = none (default: the model's)")
      ->check(CLI::Range(0.0, 2.0))
      ->needs(using_name);
  return cmd;
}

int run_query(const QueryArgs& a) {
  if (a.vector.empty() == a.file.empty()) {
    spdlog::error("give the query as --vector \"[...]\" or as --file PATH [--row I] [--rows N]");
    return kExitUsage;
  }
  std::vector<std::vector<float>> queries;
  std::vector<std::string> labels;
  if (!a.vector.empty()) {
    auto v = parse_vector_arg(a.vector);
    if (!v.is_ok()) {
      spdlog::error("{}", v.status().message());
      return kExitUsage;
    }
    labels.push_back(fmt::format("--vector ({} values)", v->size()));
    queries.push_back(std::move(v).value());
  } else {
    auto format = parse_vector_format(a.format);
    if (!format.is_ok()) {
      spdlog::error("--format: {}", format.status().message());
      return kExitUsage;
    }
    ReadOptions ro;
    ro.format = *format;
    ro.max_rows = a.row + a.rows;
    auto f = read_vector_file(a.file, ro);
    if (!f.is_ok()) {
      spdlog::error("{}", f.status().message());
      return kExitFailure;
    }
    if (f->rows < a.row + a.rows) {
      spdlog::error("{} has {} rows: --row {} --rows {} goes past the end", a.file, f->rows, a.row, a.rows);
      return kExitFailure;
    }
    for (std::size_t r = a.row; r < a.row + a.rows; ++r) {
      queries.emplace_back(f->row(r), f->row(r) + f->dim);
      labels.push_back(fmt::format("row {} of {}", r, a.file));
    }
  }
  json filter;
  if (!a.filter.empty()) {
    filter = json::parse(a.filter, nullptr, /*allow_exceptions=*/false);
    if (filter.is_discarded() || !filter.is_object()) {
      spdlog::error("--filter must be a JSON object (a Qdrant filter); got: {}", a.filter);
      return kExitUsage;
    }
  }
  auto client = connect(a.connection);
  if (!client.is_ok()) {
    spdlog::error("--url: {}", client.status().message());
    return kExitUsage;
  }

  json searches = json::array();
  for (const auto& q : queries) {
    json s = {{"query", float_array(q.data(), q.size())}, {"limit", a.limit}, {"with_payload", a.with_payload}};
    if (!filter.is_null()) s["filter"] = filter;
    if (a.exact) s["params"] = {{"exact", true}};
    if (!a.using_name.empty()) s["using"] = a.using_name;
    if (!a.method.empty()) s["params"]["vecstash"]["method"] = a.method;
    if (a.relative_input) s["params"]["vecstash"]["relative_input"] = true;
    if (a.hubness_weight) s["params"]["vecstash"]["hubness_weight"] = *a.hubness_weight;
    searches.push_back(std::move(s));
  }
  const bool batch = searches.size() > 1;
  const auto start = Clock::now();
  auto result =
      batch ? call(**client, api::Method::kPost, collection_path(a.collection, "/points/query/batch"),
                   json{{"searches", searches}}.dump())
            : call(**client, api::Method::kPost, collection_path(a.collection, "/points/query"), searches[0].dump());
  if (!result.is_ok()) {
    spdlog::error("query on '{}' failed: {}", a.collection, result.status().message());
    return kExitFailure;
  }
  const double elapsed = seconds_since(start);
  if (a.json) {
    std::fputs((result->dump(2, ' ', false, json::error_handler_t::replace) + "\n").c_str(), stdout);
    return 0;
  }
  const json answers = batch ? *result : json::array({*result});
  if (!answers.is_array() || answers.size() != queries.size()) {
    spdlog::error("the server answered {} queries with something else: {}", queries.size(),
                  truncate_utf8(result->dump(), 200));
    return kExitFailure;
  }
  for (std::size_t i = 0; i < answers.size(); ++i) {
    if (i) std::fputs("\n", stdout);
    std::fputs(fmt::format("query: {}\n", labels[i]).c_str(), stdout);
    print_hits(field(answers[i], "points"), a.with_payload);
  }
  std::fflush(stdout);  // the tables before the log line, also when both go to one pipe
  spdlog::info("{} {} answered in {:.1f} ms", queries.size(), queries.size() == 1 ? "query" : "queries",
               elapsed * 1000.0);
  return 0;
}

// ---- inspect -----------------------------------------------------------------------------------

namespace {

std::string pca_text(const json& ours) {
  const json& pca = field(ours, "pca");
  if (pca.is_null()) return "-";
  const json& state = field(ours, "state");
  if (field(state, "calibrated") == true) return text(field(state, "code_dim"));
  const double components = number_or(field(pca, "components"), 0);
  if (components > 0) return fmt::format("{:.0f}", components);
  return fmt::format("{:.0f}% var", 100.0 * number_or(field(pca, "variance_fraction"), 0));
}

std::vector<std::string> list_row(const std::string& name, const json& info) {
  const json& ours = at_path(info, "/config/vecstash");
  const json& state = field(ours, "state");
  const bool calibrated = field(state, "calibrated") == true;
  auto dim = vector_size(info);
  const std::string index = text(field(ours, "index"));
  return {name,
          text(field(info, "points_count")),
          vector_distance(info),
          dim.is_ok() ? std::to_string(*dim) : "-",
          text(at_path(ours, "/codec/kind")),
          pca_text(ours),
          calibrated ? text(field(state, "code_bytes")) : "-",
          calibrated ? "yes" : "no",
          index.empty() || index == "-" ? "flat" : index};
}

/// "a.b  value" lines for every leaf of a settings object.
void flatten(const json& j, const std::string& prefix, std::vector<std::pair<std::string, std::string>>* out) {
  if (j.is_object() && !j.empty()) {
    for (const auto& [k, v] : j.items()) flatten(v, prefix.empty() ? k : prefix + "." + k, out);
    return;
  }
  out->emplace_back(prefix, j.is_null() ? "none" : text(j));
}

void print_section(const std::string& title, const std::vector<std::pair<std::string, std::string>>& lines) {
  std::size_t width = 0;
  for (const auto& [k, v] : lines) width = std::max(width, k.size());
  std::string out = title + "\n";
  for (const auto& [k, v] : lines) out += fmt::format("  {:<{}}  {}\n", k, width, v);
  std::fputs(out.c_str(), stdout);
}

void print_details(const std::string& name, const std::string& url, const json& info, const json& recal) {
  const json& ours = at_path(info, "/config/vecstash");
  const json& state = field(ours, "state");
  auto dim = vector_size(info);
  const json& vectors = at_path(info, "/config/params/vectors");
  std::string vector_text =
      fmt::format("{} dimensions, {}", dim.is_ok() ? std::to_string(*dim) : "?", vector_distance(info));
  if (vectors.is_object() && !vectors.contains("size") && vectors.size() == 1) {
    vector_text += fmt::format(" (named \"{}\")", vectors.begin().key());
  }
  print_section(fmt::format("collection '{}' at {}", name, url), {{"status", text(field(info, "status"))},
                                                                  {"points", text(field(info, "points_count"))},
                                                                  {"vectors", vector_text}});

  std::vector<std::pair<std::string, std::string>> settings;
  json shown = ours;
  shown.erase("state");
  shown.erase("anchors");  // a section of its own below
  if (field(shown, "index") == "" || field(shown, "index").is_null()) shown["index"] = "flat (exact scan)";
  flatten(shown, "", &settings);
  print_section("settings", settings);

  const bool calibrated = field(state, "calibrated") == true;
  std::vector<std::pair<std::string, std::string>> st = {
      {"calibrated", calibrated ? fmt::format("yes (generation {})", text(field(state, "generation"))) : "no"},
      {"rows", fmt::format("{} (indexed: {})", text(field(state, "rows")), text(field(state, "indexed_rows")))},
  };
  if (calibrated) {
    st.emplace_back("code dimension", fmt::format("{} (explained variance {:.4f})", text(field(state, "code_dim")),
                                                  number_or(field(state, "explained_variance"), NAN)));
    st.emplace_back("bytes per code", text(field(state, "code_bytes")));
  }
  std::string recal_text = text(field(recal, "state"));
  if (field(recal, "state") == "running") {
    recal_text += fmt::format(" ({} of {} rows)", text(field(recal, "done")), text(field(recal, "total")));
  } else if (field(recal, "state") == "failed") {
    recal_text += ": " + text(field(recal, "message"));
  }
  st.emplace_back("recalibration", recal_text);
  print_section("state", st);

  if (const json& anchors = field(ours, "anchors"); anchors.is_object()) {
    std::string models;
    for (const json& m : field(anchors, "models")) models += (models.empty() ? "" : ", ") + text(m);
    print_section("anchors", {{"version", text(field(anchors, "version"))},
                              {"strategy", text(field(anchors, "strategy"))},
                              {"anchors", text(field(anchors, "count"))},
                              {"relative vectors", field(anchors, "relative").is_null()
                                                       ? std::string("not kept")
                                                       : "'" + text(field(anchors, "relative")) + "'"},
                              {"models", models.empty() ? "none" : models}});
  }

  const json& mem = field(state, "memory_bytes");
  const double points = number_or(field(info, "points_count"), 0);
  std::vector<std::pair<std::string, std::string>> memory;
  for (const char* part : {"codes", "originals", "ids", "payloads", "index", "total"}) {
    const double b = number_or(field(mem, part), 0);
    memory.emplace_back(
        part, points > 0 ? fmt::format("{:>10}  ({:.1f} bytes/point)", human_bytes(b), b / points) : human_bytes(b));
  }
  print_section("memory", memory);
}

void print_report(const json& r) {
  auto recall = [](const json& v) {
    return v.is_number() ? fmt::format("{:.4f}", v.get<double>()) : std::string("n/a");
  };
  const std::string k = text(field(r, "k"));
  std::vector<std::pair<std::string, std::string>> lines = {
      {"points", text(field(r, "points"))},
      {"dimension", field(r, "pca_dim") == 0 ? fmt::format("{} (not calibrated yet: no {} codes)",
                                                           text(field(r, "dim")), text(field(r, "code_kind")))
                                             : fmt::format("{} -> {} ({} codes)", text(field(r, "dim")),
                                                           text(field(r, "pca_dim")), text(field(r, "code_kind")))},
      {"float32 bytes/vector", fmt::format("{:.1f}", number_or(field(r, "float32_bytes_per_vector"), NAN))},
      {"code bytes/vector", fmt::format("{:.1f}", number_or(field(r, "code_bytes_per_vector"), NAN))},
      {"RAM bytes/vector", fmt::format("{:.1f} (codes, originals, ids, payloads, index)",
                                       number_or(field(r, "ram_bytes_per_vector"), NAN))},
      {"compression ratio", fmt::format("{:.2f}x (float32 / codes)", number_or(field(r, "compression_ratio"), NAN))},
      {"recall@" + k + " codes", recall(field(r, "recall_at_k"))},
      {"recall@" + k + " rescored",
       fmt::format("{} (float32 rescoring, oversampling {}x)", recall(field(r, "recall_at_k_rescored")),
                   text(field(r, "oversampling")))},
  };
  if (const json& note = field(r, "note"); note.is_string() && note != "") lines.emplace_back("note", text(note));
  print_section(
      fmt::format("compression report ({} stored points as queries, exact float32 as truth)", text(field(r, "sample"))),
      lines);
}

}  // namespace

CLI::App* add_inspect_command(CLI::App& app, InspectArgs& args) {
  CLI::App* cmd = app.add_subcommand(
      "inspect", "List the collections of a running server, or show one collection's settings, state and memory");
  cmd->fallthrough();
  add_connection_options(cmd, args.connection);
  auto* collection = cmd->add_option("--collection", args.collection, "Show this collection in detail");
  cmd->add_flag("--report", args.report, "Also measure the compression report (bytes per vector, recall@k)")
      ->needs(collection);
  cmd->add_option("--sample", args.sample, "Stored points used as queries by --report")
      ->capture_default_str()
      ->check(CLI::Range(std::size_t{1}, std::size_t{100000}))
      ->needs(collection);
  cmd->add_option("--k", args.k, "k of recall@k in --report")
      ->capture_default_str()
      ->check(CLI::Range(std::size_t{1}, std::size_t{1000}))
      ->needs(collection);
  cmd->add_flag("--json", args.json, "Print JSON instead of tables");
  return cmd;
}

int run_inspect(const InspectArgs& a) {
  auto client = connect(a.connection);
  if (!client.is_ok()) {
    spdlog::error("--url: {}", client.status().message());
    return kExitUsage;
  }
  api::HttpClient& http = *client.value();

  if (a.collection.empty()) {
    auto list = call(http, api::Method::kGet, "/collections");
    if (!list.is_ok()) {
      spdlog::error("cannot list the collections at {}: {}", a.connection.url, list.status().message());
      return kExitFailure;
    }
    json all = json::array();
    std::vector<std::vector<std::string>> rows;
    for (const json& c : field(*list, "collections")) {
      const std::string name = text(field(c, "name"));
      auto info = get_collection(http, a.connection, name);
      if (!info.is_ok()) {
        if (info.status().code() == StatusCode::kNotFound) continue;  // dropped meanwhile
        spdlog::error("{}: {}", name, info.status().message());
        return kExitFailure;
      }
      rows.push_back(list_row(name, *info));
      all.push_back({{"name", name}, {"info", *info}});
    }
    if (a.json) {
      std::fputs((all.dump(2, ' ', false, json::error_handler_t::replace) + "\n").c_str(), stdout);
    } else if (rows.empty()) {
      std::fputs(fmt::format("no collections at {}\n", a.connection.url).c_str(), stdout);
    } else {
      print_table({"name", "points", "distance", "dim", "codes", "pca dim", "bytes/code", "calibrated", "index"}, rows,
                  {false, true, false, true, false, true, true, false, false});
    }
    return 0;
  }

  auto info = get_collection(http, a.connection, a.collection);
  if (!info.is_ok()) {
    spdlog::error("{}", info.status().message());
    return kExitFailure;
  }
  auto recal = call(http, api::Method::kGet, collection_path(a.collection, "/recalibration"));
  if (!recal.is_ok()) {
    spdlog::error("recalibration state of '{}': {}", a.collection, recal.status().message());
    return kExitFailure;
  }
  json report;
  if (a.report) {
    const auto start = Clock::now();
    auto r = call(http, api::Method::kGet,
                  collection_path(a.collection, fmt::format("/compression?sample={}&k={}", a.sample, a.k)));
    if (!r.is_ok()) {
      spdlog::error("compression report of '{}': {}", a.collection, r.status().message());
      return kExitFailure;
    }
    spdlog::debug("compression report in {:.2f} s", seconds_since(start));
    report = std::move(r).value();
  }
  if (a.json) {
    json out = {{"name", a.collection}, {"info", *info}, {"recalibration", *recal}};
    if (a.report) out["compression"] = report;
    std::fputs((out.dump(2, ' ', false, json::error_handler_t::replace) + "\n").c_str(), stdout);
    return 0;
  }
  print_details(a.collection, a.connection.url, *info, *recal);
  if (a.report) print_report(report);
  return 0;
}

// ---- anchors and models ------------------------------------------------------------------------

namespace {

bool is_sampling_strategy(const std::string& s) { return s == "random" || s == "kmeans" || s == "farthest"; }

/// Ids from a comma-separated flag value or from a file; an empty list when neither is given.
/// Errors: a bad flag value is a usage error (2), an unreadable or bad file a failure (1).
struct IdsOrExit {
  std::vector<json> ids;
  int exit_code = 0;
};
IdsOrExit ids_from_flags(const std::string& list, const std::string& file) {
  IdsOrExit out;
  if (!list.empty()) {
    auto ids = parse_id_list(list, "--ids");
    if (!ids.is_ok()) {
      spdlog::error("{}", ids.status().message());
      out.exit_code = kExitUsage;
      return out;
    }
    out.ids = std::move(ids).value();
  } else if (!file.empty()) {
    auto ids = read_id_file(file);
    if (!ids.is_ok()) {
      spdlog::error("{}", ids.status().message());
      out.exit_code = kExitFailure;
      return out;
    }
    out.ids = std::move(ids).value();
  }
  return out;
}

/// Every row of a vector file; `format_name` as --format.
Result<VectorFile> read_all_rows(const std::string& path, const std::string& format_name) {
  auto format = parse_vector_format(format_name);
  if (!format.is_ok()) return format.status();
  ReadOptions ro;
  ro.format = *format;
  return read_vector_file(path, ro);
}

/// The ids of a JSONL file's rows when every line has one; empty otherwise (other formats have none).
std::vector<json> ids_of_rows(const VectorFile& f) {
  if (f.ids.size() != f.rows) return {};
  if (std::any_of(f.ids.begin(), f.ids.end(), [](const json& id) { return id.is_null(); })) return {};
  return f.ids;
}

std::string fixed4(const json& v) { return v.is_number() ? fmt::format("{:.4f}", v.get<double>()) : "-"; }

// "k 16, t 0.05, w 0.75: 0.7488" from a model's "local" object ("-" when absent).
std::string local_summary(const json& l) {
  if (!l.is_object()) return "-";
  return fmt::format("k {}, t {:g}, w {:g}: {}", text(field(l, "neighbours")), number_or(field(l, "temperature"), NAN),
                     number_or(field(l, "weight"), NAN), fixed4(field(l, "fit_cosine")));
}

std::string hubness_summary(const json& h) {
  if (!h.is_object()) return "-";
  const double w = number_or(field(h, "weight"), NAN);
  if (w == 0.0) return "off";
  return fmt::format("{:g}, {}", w, text(field(h, "neighbours")));
}

void print_models(const json& models) {
  if (!models.is_array() || models.empty()) {
    std::fputs("(no models registered)\n", stdout);
    return;
  }
  std::vector<std::vector<std::string>> rows;
  for (const json& m : models) {
    rows.push_back({text(field(m, "name")), text(field(m, "dim")), text(field(m, "method")),
                    fmt::format("{:g}", number_or(field(m, "lambda"), NAN)), text(field(m, "anchors_version")),
                    fixed4(field(m, "procrustes_fit_cosine")), fixed4(field(m, "affine_fit_cosine")),
                    fixed4(field(m, "affine_orthogonality_gap")), local_summary(field(m, "local")),
                    hubness_summary(field(m, "hubness"))});
  }
  print_table({"name", "dim", "method", "lambda", "anchors version", "procrustes fit", "affine fit", "affine gap",
               "local (k, temperature, weight: fit)", "hubness (weight, k)"},
              rows, {false, true, false, true, true, true, true, true, false, false});
}

void print_anchor_info(const std::string& collection, const std::string& url, const json& a) {
  const json& rel = field(a, "relative");
  const std::string relative =
      field(rel, "store") == true
          ? fmt::format("'{}': {} codes, {} rows, {}", text(field(rel, "name")), text(field(rel, "kind")),
                        text(field(rel, "rows")), human_bytes(number_or(field(rel, "bytes"), 0)))
          : std::string("not kept");
  const json& ids = field(a, "ids");
  std::string id_text;
  constexpr std::size_t kShown = 8;
  for (std::size_t i = 0; ids.is_array() && i < std::min(ids.size(), kShown); ++i) {
    id_text += (i ? ", " : "") + text(ids[i]);
  }
  if (ids.is_array() && ids.size() > kShown)
    id_text += fmt::format(", … ({} in all; --ids-out writes them)", ids.size());
  print_section(fmt::format("anchor set of '{}' at {}", collection, url),
                {{"version", text(field(a, "version"))},
                 {"strategy", text(field(a, "strategy"))},
                 {"anchors", text(field(a, "count"))},
                 {"seed", text(field(a, "seed"))},
                 {"centred", field(a, "center") == true ? "yes (the anchors' mean is subtracted)" : "no"},
                 {"relative vectors", relative},
                 {"ids", id_text.empty() ? "-" : id_text}});
  std::fputs("models\n", stdout);
  print_models(field(a, "models"));
}

void print_json(const json& j) {
  std::fputs((j.dump(2, ' ', false, json::error_handler_t::replace) + "\n").c_str(), stdout);
}

int anchors_set(const AnchorsArgs& a) {
  const bool have_ids = !a.ids.empty() || !a.ids_file.empty();
  const std::string strategy = a.strategy.value_or(!a.file.empty() ? "vectors" : have_ids ? "ids" : "kmeans");
  if (is_sampling_strategy(strategy) && (have_ids || !a.file.empty())) {
    spdlog::error("--ids, --ids-file and --file go with --strategy ids or vectors, not {}", strategy);
    return kExitUsage;
  }
  if (strategy == "ids" && (!have_ids || !a.file.empty())) {
    spdlog::error("--strategy ids takes the points as --ids 1,2,3 or --ids-file FILE (and no --file)");
    return kExitUsage;
  }
  if (strategy == "vectors" && a.file.empty()) {
    spdlog::error(
        "--strategy vectors needs --file (the anchors' vectors) with their ids (--ids, --ids-file, or the "
        "ids of a JSONL file)");
    return kExitUsage;
  }
  if (!is_sampling_strategy(strategy) && a.count) {
    spdlog::error("--count goes with --strategy random, kmeans or farthest; with {} the ids given set the count",
                  strategy);
    return kExitUsage;
  }
  if (!a.file.empty() && !parse_vector_format(a.format).is_ok()) {
    spdlog::error("--format: {}", parse_vector_format(a.format).status().message());
    return kExitUsage;
  }
  IdsOrExit ids = ids_from_flags(a.ids, a.ids_file);
  if (ids.exit_code != 0) return ids.exit_code;

  json body = {{"strategy", strategy}};
  if (a.count) body["count"] = *a.count;
  if (a.seed) body["seed"] = *a.seed;
  if (a.no_center) body["center"] = false;
  json relative = json::object();
  if (a.no_relative) relative["store"] = false;
  if (!a.relative_kind.empty()) relative["kind"] = a.relative_kind;
  if (!a.relative_name.empty()) relative["name"] = a.relative_name;
  if (!relative.empty()) body["relative"] = relative;
  if (strategy == "ids") body["ids"] = ids.ids;
  if (strategy == "vectors") {
    auto f = read_all_rows(a.file, a.format);
    if (!f.is_ok()) {
      spdlog::error("{}", f.status().message());
      return kExitFailure;
    }
    if (ids.ids.empty()) ids.ids = ids_of_rows(*f);
    if (ids.ids.empty()) {
      spdlog::error("{} has no ids: give the anchors' ids with --ids or --ids-file (one per row)", a.file);
      return kExitUsage;
    }
    if (ids.ids.size() != f->rows) {
      spdlog::error("{} has {} rows but {} ids were given: one id per row", a.file, f->rows, ids.ids.size());
      return kExitFailure;
    }
    json items = json::array();
    for (std::size_t r = 0; r < f->rows; ++r)
      items.push_back({{"id", ids.ids[r]}, {"vector", float_array(f->row(r), f->dim)}});
    body["anchors"] = std::move(items);
  }
  auto client = connect(a.connection);
  if (!client.is_ok()) {
    spdlog::error("--url: {}", client.status().message());
    return kExitUsage;
  }
  const auto start = Clock::now();
  auto result = call(**client, api::Method::kPut, collection_path(a.collection, "/anchors"), body.dump());
  if (!result.is_ok()) {
    spdlog::error("setting the anchors of '{}' failed: {}", a.collection, result.status().message());
    return kExitFailure;
  }
  if (a.json) {
    print_json(*result);
    return 0;
  }
  print_anchor_info(a.collection, a.connection.url, *result);
  std::fflush(stdout);
  spdlog::info("anchor set version {} of '{}' set in {:.2f} s", text(field(*result, "version")), a.collection,
               seconds_since(start));
  return 0;
}

int anchors_show(const AnchorsArgs& a) {
  if (!a.vectors_out.empty()) {
    const std::string ext = std::filesystem::path(a.vectors_out).extension().string();
    if (ext != ".fvecs" && ext != ".npy") {
      spdlog::error("--vectors-out {}: the name must end in .fvecs or .npy", a.vectors_out);
      return kExitUsage;
    }
  }
  auto client = connect(a.connection);
  if (!client.is_ok()) {
    spdlog::error("--url: {}", client.status().message());
    return kExitUsage;
  }
  const bool with_vectors = !a.vectors_out.empty();
  auto result = call(**client, api::Method::kGet,
                     collection_path(a.collection, with_vectors ? "/anchors?with_vectors=true" : "/anchors"));
  if (!result.is_ok()) {
    spdlog::error("anchors of '{}': {}", a.collection, result.status().message());
    return kExitFailure;
  }
  json info = std::move(result).value();
  if (!a.ids_out.empty()) {
    std::string lines;
    for (const json& id : field(info, "ids")) lines += text(id) + "\n";
    std::FILE* out = std::fopen(a.ids_out.c_str(), "wb");
    bool written = out != nullptr && std::fwrite(lines.data(), 1, lines.size(), out) == lines.size();
    if (out != nullptr && std::fclose(out) != 0) written = false;
    if (!written) {
      spdlog::error("--ids-out {}: cannot write the file", a.ids_out);
      return kExitFailure;
    }
    spdlog::info("wrote {} anchor ids to {}", field(info, "ids").size(), a.ids_out);
  }
  if (with_vectors) {
    const json& rows = field(info, "vectors");
    const std::size_t dim = rows.is_array() && !rows.empty() && rows[0].is_array() ? rows[0].size() : 0;
    std::vector<float> values;
    values.reserve(rows.size() * dim);
    for (const json& row : rows) {
      if (!row.is_array() || row.size() != dim) {
        spdlog::error("the server's anchor vectors are not {} x {} numbers", rows.size(), dim);
        return kExitFailure;
      }
      for (const json& x : row) values.push_back(x.is_number() ? x.get<float>() : NAN);
    }
    if (const Status s = write_vector_file(a.vectors_out, values.data(), rows.size(), dim); !s.is_ok()) {
      spdlog::error("--vectors-out: {}", s.message());
      return kExitFailure;
    }
    spdlog::info("wrote {} anchor vectors of dimension {} to {}", rows.size(), dim, a.vectors_out);
    info.erase("vectors");
  }
  if (a.json) {
    print_json(info);
  } else {
    print_anchor_info(a.collection, a.connection.url, info);
  }
  return 0;
}

int anchors_delete(const AnchorsArgs& a) {
  auto client = connect(a.connection);
  if (!client.is_ok()) {
    spdlog::error("--url: {}", client.status().message());
    return kExitUsage;
  }
  auto result = call(**client, api::Method::kDelete, collection_path(a.collection, "/anchors"));
  if (!result.is_ok()) {
    spdlog::error("deleting the anchors of '{}' failed: {}", a.collection, result.status().message());
    return kExitFailure;
  }
  if (a.json) {
    print_json(*result);
  } else {
    std::fputs(fmt::format("deleted the anchor set of '{}', its models and relative vectors\n", a.collection).c_str(),
               stdout);
  }
  return 0;
}

std::string model_path(const std::string& collection, const std::string& name) {
  return collection_path(collection, "/models/" + encode_segment(name));
}

int model_register(const ModelArgs& a) {
  if (!parse_vector_format(a.format).is_ok()) {
    spdlog::error("--format: {}", parse_vector_format(a.format).status().message());
    return kExitUsage;
  }
  auto f = read_all_rows(a.file, a.format);
  if (!f.is_ok()) {
    spdlog::error("{}", f.status().message());
    return kExitFailure;
  }
  IdsOrExit ids = ids_from_flags("", a.ids_file);
  if (ids.exit_code != 0) return ids.exit_code;
  if (ids.ids.empty()) ids.ids = ids_of_rows(*f);
  if (!ids.ids.empty() && ids.ids.size() != f->rows) {
    spdlog::error("{} has {} rows but {} has {} ids: one id per row", a.file, f->rows, a.ids_file, ids.ids.size());
    return kExitFailure;
  }
  json body = json::object();
  if (ids.ids.empty()) {
    // The rows are the model's embeddings of the anchors in the anchor set's order.
    json rows = json::array();
    for (std::size_t r = 0; r < f->rows; ++r) rows.push_back(float_array(f->row(r), f->dim));
    body["vectors"] = std::move(rows);
  } else {
    json items = json::array();
    for (std::size_t r = 0; r < f->rows; ++r)
      items.push_back({{"id", ids.ids[r]}, {"vector", float_array(f->row(r), f->dim)}});
    body["anchors"] = std::move(items);
  }
  if (!a.method.empty()) body["method"] = a.method;
  if (a.lambda) body["lambda"] = *a.lambda;
  json local = json::object();
  if (a.local_neighbours) local["neighbours"] = *a.local_neighbours;
  if (a.local_temperature) local["temperature"] = *a.local_temperature;
  if (a.local_weight) local["weight"] = *a.local_weight;
  if (!local.empty()) body["local"] = std::move(local);
  json hubness = json::object();
  if (a.hubness_weight) hubness["weight"] = *a.hubness_weight;
  if (a.hubness_neighbours) hubness["neighbours"] = *a.hubness_neighbours;
  if (!hubness.empty()) body["hubness"] = std::move(hubness);
  auto client = connect(a.connection);
  if (!client.is_ok()) {
    spdlog::error("--url: {}", client.status().message());
    return kExitUsage;
  }
  auto result = call(**client, api::Method::kPut, model_path(a.collection, a.name), body.dump());
  if (!result.is_ok()) {
    spdlog::error("registering model '{}' on '{}' failed: {}", a.name, a.collection, result.status().message());
    return kExitFailure;
  }
  if (a.json) {
    print_json(*result);
    return 0;
  }
  const json& m = *result;
  std::fputs(
      fmt::format("registered model '{}' on '{}' (anchor set version {}): {} dimensions, default method {}\n"
                  "fit on the anchors: procrustes cosine {}, affine cosine {} (orthogonality gap {}, lambda {:g}), "
                  "local {} (leave-one-out); hubness correction {}\n",
                  text(field(m, "name")), a.collection, text(field(m, "anchors_version")), text(field(m, "dim")),
                  text(field(m, "method")), fixed4(field(m, "procrustes_fit_cosine")),
                  fixed4(field(m, "affine_fit_cosine")), fixed4(field(m, "affine_orthogonality_gap")),
                  number_or(field(m, "lambda"), NAN), local_summary(field(m, "local")),
                  hubness_summary(field(m, "hubness")))
          .c_str(),
      stdout);
  if (const json& w = field(m, "warnings"); w.is_array()) {
    for (const json& line : w) spdlog::warn("model '{}': {}", a.name, text(line));
  }
  return 0;
}

int model_list(const ModelArgs& a) {
  auto client = connect(a.connection);
  if (!client.is_ok()) {
    spdlog::error("--url: {}", client.status().message());
    return kExitUsage;
  }
  auto result = call(**client, api::Method::kGet, collection_path(a.collection, "/models"));
  if (!result.is_ok()) {
    spdlog::error("models of '{}': {}", a.collection, result.status().message());
    return kExitFailure;
  }
  if (a.json) {
    print_json(*result);
  } else {
    print_models(field(*result, "models"));
  }
  return 0;
}

int model_delete(const ModelArgs& a) {
  auto client = connect(a.connection);
  if (!client.is_ok()) {
    spdlog::error("--url: {}", client.status().message());
    return kExitUsage;
  }
  auto result = call(**client, api::Method::kDelete, model_path(a.collection, a.name));
  if (!result.is_ok()) {
    spdlog::error("deleting model '{}' of '{}' failed: {}", a.name, a.collection, result.status().message());
    return kExitFailure;
  }
  if (a.json) {
    print_json(*result);
  } else {
    std::fputs(fmt::format("deleted model '{}' of '{}'\n", a.name, a.collection).c_str(), stdout);
  }
  return 0;
}

/// --url, --api-key, --timeout, --collection and --json on a leaf subcommand.
void add_client_basics(CLI::App* cmd, ConnectionArgs& connection, std::string& collection, bool& json_flag) {
  cmd->fallthrough();
  add_connection_options(cmd, connection);
  cmd->add_option("--collection", collection, "Collection name")->required();
  cmd->add_flag("--json", json_flag, "Print the server's result as JSON");
}

}  // namespace

CLI::App* add_anchors_command(CLI::App& app, AnchorsArgs& args) {
  CLI::App* cmd = app.add_subcommand(
      "anchors", "The anchor set of a collection on a running server: choose or upload it, show it, delete it");
  cmd->fallthrough();
  cmd->require_subcommand(1);
  using Action = AnchorsArgs::Action;

  CLI::App* set = cmd->add_subcommand(
      "set",
      "Choose the anchors among the points (random, kmeans, farthest), name them (ids) or upload them "
      "(vectors); replaces the anchor set and removes its models");
  add_client_basics(set, args.connection, args.collection, args.json);
  set->add_option("--strategy", args.strategy,
                  "random, kmeans, farthest, ids or vectors (default: ids with --ids/--ids-file, vectors with --file, "
                  "else kmeans)")
      ->check(CLI::IsMember({"random", "kmeans", "farthest", "ids", "vectors"}));
  set->add_option("--count", args.count, "Anchors to choose (random, kmeans, farthest), in [2, 8192] (default 256)")
      ->check(CLI::Range(std::size_t{2}, std::size_t{8192}));
  set->add_option("--seed", args.seed, "Seed of the sampling (default 42)");
  auto* ids = set->add_option("--ids", args.ids, "The anchors' point ids, comma-separated (strategy ids or vectors)");
  auto* ids_file = set->add_option("--ids-file", args.ids_file,
                                   "The anchors' ids from a file, one per line (strategy ids; or vectors: the ids of "
                                   "--file's rows)")
                       ->check(CLI::ExistingFile);
  ids->excludes(ids_file);
  auto* file =
      set->add_option("--file", args.file, "The anchors' vectors (.fvecs, .bvecs, .npy, .jsonl), for strategy vectors")
          ->check(CLI::ExistingFile);
  set->add_option("--format", args.format, "Format of --file; auto goes by the name")
      ->capture_default_str()
      ->check(CLI::IsMember({"auto", "fvecs", "bvecs", "npy", "jsonl"}))
      ->needs(file);
  set->add_flag("--no-center", args.no_center, "Relative vectors without subtracting the anchors' mean first");
  auto* kind = set->add_option("--relative-kind", args.relative_kind,
                               "Code kind of the stored relative vectors: f32, f16, bf16, e4m3, e5m2, i8 (default f16)")
                   ->check(CLI::IsMember({"f32", "f16", "bf16", "e4m3", "e5m2", "i8"}));
  auto* name = set->add_option("--relative-name", args.relative_name,
                               "Name under which queries reach the relative vectors (--using; default relative)");
  set->add_flag("--no-relative", args.no_relative,
                "Keep no relative vectors (models answer with local, procrustes or affine only)")
      ->excludes(kind)
      ->excludes(name);
  set->footer(
      "Examples:\n"
      "  vecstash anchors set --collection docs --strategy kmeans --count 256\n"
      "  vecstash anchors set --collection docs --ids 3,17,42,108\n"
      "  vecstash anchors set --collection docs --file anchors.npy --ids-file anchor_ids.txt\n"
      "An ids file holds one id (an unsigned integer or a UUID) per line; # starts a comment.\n"
      "Exit status: 0 done, 1 the server or a file said no, 2 bad flags.");
  set->callback([&args] { args.action = Action::kSet; });

  CLI::App* show = cmd->add_subcommand("show", "Show the anchor set and its models; write the ids or vectors out");
  add_client_basics(show, args.connection, args.collection, args.json);
  show->add_option("--ids-out", args.ids_out, "Write the anchors' ids to this file, one per line, in order");
  show->add_option("--vectors-out", args.vectors_out,
                   "Write the anchors' vectors (in the collection's space, in order) to this .fvecs or .npy file");
  show->callback([&args] { args.action = Action::kShow; });

  CLI::App* del = cmd->add_subcommand("delete", "Delete the anchor set, its models and the relative vectors");
  add_client_basics(del, args.connection, args.collection, args.json);
  del->callback([&args] { args.action = Action::kDelete; });
  return cmd;
}

int run_anchors(const AnchorsArgs& a) {
  switch (a.action) {
    case AnchorsArgs::Action::kSet:
      return anchors_set(a);
    case AnchorsArgs::Action::kShow:
      return anchors_show(a);
    case AnchorsArgs::Action::kDelete:
      return anchors_delete(a);
  }
  return kExitUsage;
}

CLI::App* add_model_command(CLI::App& app, ModelArgs& args) {
  CLI::App* cmd = app.add_subcommand(
      "model", "Models registered on a collection by their embeddings of its anchors (cross-model queries)");
  cmd->fallthrough();
  cmd->require_subcommand(1);
  using Action = ModelArgs::Action;

  CLI::App* reg =
      cmd->add_subcommand("register",
                          "Register (or replace) a model from its embeddings of the anchors; fits the maps into the "
                          "collection's space");
  add_client_basics(reg, args.connection, args.collection, args.json);
  reg->add_option("--name", args.name, "Model name: 1 to 64 characters of A-Z a-z 0-9 _ . -")->required();
  auto* file = reg->add_option("--file", args.file,
                               "The model's embeddings of the anchors (.fvecs, .bvecs, .npy, .jsonl), one row each")
                   ->required()
                   ->check(CLI::ExistingFile);
  reg->add_option("--format", args.format, "Format of --file; auto goes by the name")
      ->capture_default_str()
      ->check(CLI::IsMember({"auto", "fvecs", "bvecs", "npy", "jsonl"}))
      ->needs(file);
  reg->add_option("--ids-file", args.ids_file,
                  "The anchor id of each row of --file, one per line (default: the ids of a JSONL file, else the rows "
                  "are in the anchor set's order; `vecstash anchors show --ids-out` writes that order)")
      ->check(CLI::ExistingFile);
  reg->add_option("--method", args.method,
                  "How queries in this model's space are answered by default: procrustes, affine, local or "
                  "relative (default local)")
      ->check(CLI::IsMember(engine::cross_method_names()));
  reg->add_option("--lambda", args.lambda, "Affine map: pull towards the Procrustes map, in [0, 1e6] (default 1)")
      ->check(CLI::Range(0.0, 1e6));
  reg->add_option("--local-neighbours", args.local_neighbours,
                  "Local method: anchors whose residuals correct a query (default: chosen by leave-one-out)")
      ->check(CLI::Range(1, 256));
  reg->add_option("--local-temperature", args.local_temperature,
                  "Local method: softmax temperature over the cosines to those anchors (default: chosen)")
      ->check(CLI::Range(0.001, 10.0));
  reg->add_option("--local-weight", args.local_weight,
                  "Local method: share of the neighbours' residual added, 0 = Procrustes (default: chosen)")
      ->check(CLI::Range(0.0, 2.0));
  reg->add_option("--hubness-weight", args.hubness_weight,
                  "Hubness correction (CSLS) of the mapped methods: weight in [0, 2], 0 = none (default 0.5; "
                  "0 on Euclidean collections)")
      ->check(CLI::Range(0.0, 2.0));
  reg->add_option("--hubness-neighbours", args.hubness_neighbours,
                  "Hubness correction: mapped anchors averaged per point (default 10)")
      ->check(CLI::Range(1, 256));
  reg->footer(
      "Then query with the model's embeddings: vecstash query --collection C --using NAME --vector '[...]'\n"
      "Exit status: 0 done, 1 the server or a file said no, 2 bad flags.");
  reg->callback([&args] { args.action = Action::kRegister; });

  CLI::App* list = cmd->add_subcommand("list", "The models registered on a collection, with their fit on the anchors");
  add_client_basics(list, args.connection, args.collection, args.json);
  list->callback([&args] { args.action = Action::kList; });

  CLI::App* del = cmd->add_subcommand("delete", "Delete a registered model");
  add_client_basics(del, args.connection, args.collection, args.json);
  del->add_option("--name", args.name, "Model name")->required();
  del->callback([&args] { args.action = Action::kDelete; });
  return cmd;
}

int run_model(const ModelArgs& a) {
  switch (a.action) {
    case ModelArgs::Action::kRegister:
      return model_register(a);
    case ModelArgs::Action::kList:
      return model_list(a);
    case ModelArgs::Action::kDelete:
      return model_delete(a);
  }
  return kExitUsage;
}

}  // namespace vecstash::tools
