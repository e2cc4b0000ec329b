#include "ingest_readers.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <zlib.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <charconv>
#include <climits>
#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>
#include <limits>
#include <optional>
#include <string>
#include <system_error>
#include <utility>

#include "benchmarks/vecs_io.h"

namespace vecstash::tools {
namespace {

using nlohmann::json;

static_assert(std::endian::native == std::endian::little,
              ".npy '<f4'/'<f8' data and TEXMEX files are little-endian and read as native");

constexpr float kFloatMax = std::numeric_limits<float>::max();

/// read_vector_file reads blocks of about this many bytes of float32 values.
constexpr std::size_t kReadAllBlockBytes = std::size_t{16} << 20;

Status not_finite(const std::filesystem::path& path, std::string_view where, std::size_t col, double v) {
  return Status::invalid_argument(
      fmt::format("{}: {}, value {}: {} is not a finite float32 number", path.string(), where, col, v));
}

/// NaN, infinity or out-of-range values in `rows` x `dim` values (the server would reject the batch
/// later); rows are numbered from `first_row` in the message.
Status check_finite(const std::filesystem::path& path, const float* values, std::size_t rows, std::size_t dim,
                    std::size_t first_row) {
  for (std::size_t r = 0; r < rows; ++r) {
    const float* row = values + r * dim;
    for (std::size_t c = 0; c < dim; ++c) {
      if (!std::isfinite(row[c])) return not_finite(path, fmt::format("row {}", first_row + r), c, row[c]);
    }
  }
  return Status::ok();
}

/// NotFound for a missing file; InvalidArgument for a directory ("<name> is a directory, not <what>").
Status check_is_file(const std::filesystem::path& path, std::string_view what) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return Status::not_found("file not found: " + path.string());
  if (std::filesystem::is_directory(path, ec)) {
    return Status::invalid_argument(fmt::format("{} is a directory, not {}", path.string(), what));
  }
  return Status::ok();
}

// ---- .fvecs / .bvecs ---------------------------------------------------------------------------

struct GzCloser {
  void operator()(gzFile_s* f) const { gzclose(f); }
};
using GzHandle = std::unique_ptr<gzFile_s, GzCloser>;

/// Reads up to n bytes; returns the count (short only at the end of the data) or Corruption when the
/// gzip stream is damaged or ends early.
Result<std::size_t> gz_read(gzFile f, const std::filesystem::path& path, void* buf, std::size_t n) {
  auto* out = static_cast<unsigned char*>(buf);
  std::size_t done = 0;
  while (done < n) {
    const unsigned chunk = static_cast<unsigned>(std::min<std::size_t>(n - done, INT_MAX / 2));
    const int got = gzread(f, out + done, chunk);
    if (got < 0) {
      int err = 0;
      const char* msg = gzerror(f, &err);
      return Status::corruption(fmt::format("{}: read error: {}", path.string(), msg ? msg : "unknown"));
    }
    if (got == 0) break;
    done += static_cast<std::size_t>(got);
  }
  if (done < n) {
    int err = Z_OK;
    const char* msg = gzerror(f, &err);
    if (err != Z_OK && err != Z_STREAM_END) {
      return Status::corruption(fmt::format("{}: damaged or truncated gzip data: {}", path.string(), msg ? msg : "?"));
    }
  }
  return done;
}

/// The dimension header of row `row`: within (0, kMaxVecsDim], and equal to `dim` unless that is 0
/// (the first row).
Status check_texmex_header(const std::filesystem::path& path, VectorFormat format, std::size_t row, std::int32_t header,
                           std::size_t dim) {
  if (header <= 0 || header > bench::kMaxVecsDim) {
    return Status::corruption(fmt::format("{}: row {} has an invalid dimension {} (not a {} file?)", path.string(), row,
                                          header, to_string(format)));
  }
  if (dim != 0 && static_cast<std::size_t>(header) != dim) {
    return Status::corruption(
        fmt::format("{}: dimension changes at row {}: {} (row 0 has {})", path.string(), row, header, dim));
  }
  return Status::ok();
}

/// TEXMEX rows: each a little-endian int32 dimension, then that many float32 (.fvecs) or uint8 (.bvecs,
/// given as float) values; every row has the first row's dimension. zlib reads plain and
/// gzip-compressed files alike.
class TexmexStream final : public VectorStream {
 public:
  static Result<std::unique_ptr<VectorStream>> open(const std::filesystem::path& path, VectorFormat format,
                                                    std::size_t limit) {
    VECSTASH_RETURN_IF_ERROR(check_is_file(path, "a vector file"));
    gzFile f = gzopen(path.c_str(), "rb");
    if (f == nullptr) return Status::not_found(fmt::format("cannot open {}: {}", path.string(), std::strerror(errno)));
    GzHandle handle(f);
    gzbuffer(f, 1 << 17);

    // The first row's dimension header fixes dim(); read_rows() takes it as already read.
    std::int32_t header = 0;
    auto got = gz_read(f, path, &header, sizeof header);
    if (!got.is_ok()) return got.status();
    if (*got == 0) return Status::corruption(fmt::format("{}: no vectors in file", path.string()));
    if (*got != sizeof header) {
      return Status::corruption(
          fmt::format("{}: truncated: row 0 has a partial dimension header ({} of 4 bytes)", path.string(), *got));
    }
    VECSTASH_RETURN_IF_ERROR(check_texmex_header(path, format, 0, header, 0));
    const auto dim = static_cast<std::size_t>(header);
    const std::size_t record = sizeof header + dim * (format == VectorFormat::kFvecs ? sizeof(float) : 1);

    // An uncompressed file holds size / record rows if it is well formed (read_rows checks that; a
    // partial last row counts here, so a truncated file reads as one row short of its total).
    std::optional<std::size_t> total;
    if (gzdirect(f) == 1) {
      std::error_code ec;
      const std::uintmax_t size = std::filesystem::file_size(path, ec);
      if (!ec) total = static_cast<std::size_t>((size + record - 1) / record);
    }
    return std::unique_ptr<VectorStream>(
        std::make_unique<TexmexStream>(path, format, dim, record, total, limit, std::move(handle)));
  }

  TexmexStream(std::filesystem::path path, VectorFormat format, std::size_t dim, std::size_t record,
               std::optional<std::size_t> total, std::size_t limit, GzHandle file)
      : VectorStream(format, dim, total, limit), path_(std::move(path)), record_(record), file_(std::move(file)) {}

 private:
  Status read_rows(std::size_t n, VectorFile* block) override {
    // Whole records into the buffer, then each checked and converted; the first record's header was
    // read by open().
    buffer_.resize(n * record_);
    std::size_t have = 0;
    if (first_header_pending_) {
      const auto header = static_cast<std::int32_t>(dim());
      std::memcpy(buffer_.data(), &header, sizeof header);
      have = sizeof header;
      first_header_pending_ = false;
    }
    auto got = gz_read(file_.get(), path_, buffer_.data() + have, buffer_.size() - have);
    if (!got.is_ok()) return got.status();
    have += *got;

    const std::size_t first = rows_read();
    const std::size_t full = have / record_;
    const std::size_t rest = have % record_;
    const std::size_t d = dim();
    block->values.resize(full * d);
    for (std::size_t i = 0; i < full; ++i) {
      const unsigned char* rec = buffer_.data() + i * record_;
      std::int32_t header = 0;
      std::memcpy(&header, rec, sizeof header);
      VECSTASH_RETURN_IF_ERROR(check_texmex_header(path_, format(), first + i, header, d));
      float* out = block->values.data() + i * d;
      if (format() == VectorFormat::kFvecs) {
        std::memcpy(out, rec + sizeof header, d * sizeof(float));
        VECSTASH_RETURN_IF_ERROR(check_finite(path_, out, 1, d, first + i));
      } else {
        for (std::size_t c = 0; c < d; ++c) out[c] = static_cast<float>(rec[sizeof header + c]);
      }
    }
    if (rest > 0) {  // the file ends inside a row
      const std::size_t row = first + full;
      const unsigned char* rec = buffer_.data() + full * record_;
      if (rest < sizeof(std::int32_t)) {
        return Status::corruption(fmt::format("{}: truncated: row {} has a partial dimension header ({} of 4 bytes)",
                                              path_.string(), row, rest));
      }
      std::int32_t header = 0;
      std::memcpy(&header, rec, sizeof header);
      VECSTASH_RETURN_IF_ERROR(check_texmex_header(path_, format(), row, header, d));
      return Status::corruption(fmt::format("{}: truncated: row {} has {} of {} value bytes", path_.string(), row,
                                            rest - sizeof header, record_ - sizeof header));
    }
    block->rows = full;
    return Status::ok();
  }

  std::filesystem::path path_;
  std::size_t record_;  ///< bytes per row, header included
  GzHandle file_;
  bool first_header_pending_ = true;
  std::vector<unsigned char> buffer_;
};

// ---- .npy --------------------------------------------------------------------------------------

struct NpyHeader {
  std::optional<std::string> descr;
  std::optional<bool> fortran_order;
  std::optional<std::vector<std::uint64_t>> shape;
};

/// The header is a Python dict literal, e.g. {'descr': '<f4', 'fortran_order': False, 'shape': (10, 3), }.
class NpyHeaderParser {
 public:
  NpyHeaderParser(std::string_view text, std::string where) : text_(text), where_(std::move(where)) {}

  Result<NpyHeader> parse() {
    NpyHeader h;
    skip_space();
    if (!eat('{')) return fail("expected '{'");
    while (true) {
      skip_space();
      if (eat('}')) break;
      auto key = string_literal();
      if (!key.is_ok()) return key.status();
      skip_space();
      if (!eat(':')) return fail("expected ':' after '" + *key + "'");
      skip_space();
      if (*key == "descr") {
        if (peek() != '\'' && peek() != '"') {
          return Status::invalid_argument(where_ +
                                          ": structured or compound dtypes are not supported (use a plain "
                                          "2-D float32 or float64 array)");
        }
        auto d = string_literal();
        if (!d.is_ok()) return d.status();
        h.descr = *d;
      } else if (*key == "fortran_order") {
        if (eat_word("True")) {
          h.fortran_order = true;
        } else if (eat_word("False")) {
          h.fortran_order = false;
        } else {
          return fail("fortran_order must be True or False");
        }
      } else if (*key == "shape") {
        auto s = tuple_literal();
        if (!s.is_ok()) return s.status();
        h.shape = std::move(*s);
      } else {
        return fail("unknown key '" + *key + "'");
      }
      skip_space();
      if (eat(',')) continue;
      if (eat('}')) break;
      return fail("expected ',' or '}'");
    }
    skip_space();
    if (pos_ != text_.size()) return fail("text after the closing '}'");
    if (!h.descr || !h.fortran_order || !h.shape) return fail("it needs 'descr', 'fortran_order' and 'shape'");
    return h;
  }

 private:
  char peek() const { return pos_ < text_.size() ? text_[pos_] : '\0'; }
  bool eat(char c) {
    if (peek() != c) return false;
    ++pos_;
    return true;
  }
  bool eat_word(std::string_view w) {
    if (text_.substr(pos_, w.size()) != w) return false;
    pos_ += w.size();
    return true;
  }
  void skip_space() {
    while (pos_ < text_.size() && std::strchr(" \t\r\n", text_[pos_]) != nullptr) ++pos_;
  }
  Status fail(const std::string& what) const {
    std::string shown(text_.substr(0, 160));
    while (!shown.empty() && (shown.back() == ' ' || shown.back() == '\n')) shown.pop_back();
    return Status::corruption(fmt::format("{}: malformed .npy header ({}): {}", where_, what, shown));
  }
  Result<std::string> string_literal() {
    const char quote = peek();
    if (quote != '\'' && quote != '"') return fail("expected a quoted key or string");
    ++pos_;
    const std::size_t end = text_.find(quote, pos_);
    if (end == std::string_view::npos) return fail("unterminated string");
    std::string s(text_.substr(pos_, end - pos_));
    pos_ = end + 1;
    return s;
  }
  Result<std::vector<std::uint64_t>> tuple_literal() {
    if (!eat('(')) return fail("shape must be a tuple");
    std::vector<std::uint64_t> dims;
    while (true) {
      skip_space();
      if (eat(')')) break;
      std::uint64_t v = 0;
      const char* begin = text_.data() + pos_;
      const auto [ptr, ec] = std::from_chars(begin, text_.data() + text_.size(), v);
      if (ec != std::errc() || ptr == begin) return fail("shape must hold non-negative integers");
      pos_ += static_cast<std::size_t>(ptr - begin);
      eat('L');  // written by Python 2
      dims.push_back(v);
      skip_space();
      if (eat(',')) continue;
      if (eat(')')) break;
      return fail("expected ',' or ')' in shape");
    }
    return dims;
  }

  std::string_view text_;
  std::string where_;
  std::size_t pos_ = 0;
};

std::string shape_string(const std::vector<std::uint64_t>& shape) {
  if (shape.size() == 1) return fmt::format("({},)", shape[0]);
  return fmt::format("({})", fmt::join(shape, ", "));
}

/// A 2-D '<f4' or '<f8' array in C order, read a block of rows at a time; '<f8' values are checked
/// against the float32 range before narrowing.
class NpyStream final : public VectorStream {
 public:
  static Result<std::unique_ptr<VectorStream>> open(const std::filesystem::path& path, std::size_t limit) {
    const std::string name = path.string();
    VECSTASH_RETURN_IF_ERROR(check_is_file(path, "a file"));
    std::error_code ec;
    const std::uintmax_t file_size = std::filesystem::file_size(path, ec);
    if (ec) return Status::not_found(fmt::format("cannot read {}: {}", name, ec.message()));
    std::ifstream in(path, std::ios::binary);
    if (!in) return Status::not_found(fmt::format("cannot open {}: {}", name, std::strerror(errno)));

    // Magic, version, header length: 10 bytes in version 1, 12 in versions 2 and 3.
    unsigned char pre[12] = {};
    in.read(reinterpret_cast<char*>(pre), 8);
    if (in.gcount() != 8 || std::memcmp(pre, "\x93NUMPY", 6) != 0) {
      return Status::corruption(name + ": not a .npy file (the magic string \\x93NUMPY is missing)");
    }
    const unsigned major = pre[6];
    if (major < 1 || major > 3) {
      return Status::corruption(fmt::format("{}: unsupported .npy format version {}.{}", name, major, pre[7]));
    }
    const std::size_t len_bytes = major == 1 ? 2 : 4;
    in.read(reinterpret_cast<char*>(pre + 8), static_cast<std::streamsize>(len_bytes));
    if (static_cast<std::size_t>(in.gcount()) != len_bytes) return Status::corruption(name + ": truncated .npy header");
    std::size_t header_len = pre[8] | (std::size_t{pre[9]} << 8);
    if (major > 1) header_len |= (std::size_t{pre[10]} << 16) | (std::size_t{pre[11]} << 24);
    const std::size_t data_offset = 8 + len_bytes + header_len;
    if (header_len > (1u << 20) || data_offset > file_size) {
      return Status::corruption(
          fmt::format("{}: .npy header length {} does not fit the file ({} bytes)", name, header_len, file_size));
    }
    std::string text(header_len, '\0');
    in.read(text.data(), static_cast<std::streamsize>(header_len));
    if (static_cast<std::size_t>(in.gcount()) != header_len)
      return Status::corruption(name + ": truncated .npy header");
    auto header = NpyHeaderParser(text, name).parse();
    if (!header.is_ok()) return header.status();

    const std::string& descr = *header->descr;
    std::size_t item = 0;
    if (descr == "<f4") {
      item = 4;
    } else if (descr == "<f8") {
      item = 8;
    } else if (descr == ">f4" || descr == ">f8") {
      return Status::invalid_argument(fmt::format(
          "{}: dtype '{}' is big-endian; save it little-endian (a.astype('<f4')) to ingest it", name, descr));
    } else {
      return Status::invalid_argument(fmt::format(
          "{}: dtype '{}' is not supported: use float32 ('<f4') or float64 ('<f8'), e.g. a.astype(numpy.float32)", name,
          descr));
    }
    if (*header->fortran_order) {
      return Status::invalid_argument(name +
                                      ": Fortran-order arrays are not supported: save numpy.ascontiguousarray(a)");
    }
    const auto& shape = *header->shape;
    if (shape.size() != 2) {
      return Status::invalid_argument(
          fmt::format("{}: the array has shape {}: expected a 2-D array (rows, dimension)", name, shape_string(shape)));
    }
    const std::uint64_t rows = shape[0];
    const std::uint64_t dim = shape[1];
    if (dim == 0 || dim > static_cast<std::uint64_t>(bench::kMaxVecsDim)) {
      return Status::invalid_argument(
          fmt::format("{}: dimension {} is out of range [1, {}]", name, dim, bench::kMaxVecsDim));
    }
    if (rows == 0) {
      return Status::invalid_argument(fmt::format("{}: no vectors in file (shape {})", name, shape_string(shape)));
    }
    const std::uint64_t data_bytes = file_size - data_offset;
    const std::uint64_t row_bytes = dim * item;
    if (rows > data_bytes / row_bytes || rows * row_bytes != data_bytes) {
      const bool short_file = rows > data_bytes / row_bytes;
      return Status::corruption(fmt::format("{}: {}: shape {} of {} needs {} data bytes, the file holds {}", name,
                                            short_file ? "truncated" : "trailing bytes after the array",
                                            shape_string(shape), descr, rows * row_bytes, data_bytes));
    }
    // `in` stands at data_offset: the rows follow the header.
    return std::unique_ptr<VectorStream>(std::make_unique<NpyStream>(
        path, static_cast<std::size_t>(rows), static_cast<std::size_t>(dim), item, limit, std::move(in)));
  }

  NpyStream(std::filesystem::path path, std::size_t rows, std::size_t dim, std::size_t item, std::size_t limit,
            std::ifstream in)
      : VectorStream(VectorFormat::kNpy, dim, rows, limit),
        path_(std::move(path)),
        rows_(rows),
        item_(item),
        in_(std::move(in)) {}

 private:
  Status read_rows(std::size_t n, VectorFile* block) override {
    const std::size_t first = rows_read();
    n = std::min(n, rows_ - first);
    const std::size_t d = dim();
    const std::size_t row_bytes = d * item_;
    block->values.resize(n * d);
    if (item_ == 4) {
      in_.read(reinterpret_cast<char*>(block->values.data()), static_cast<std::streamsize>(n * row_bytes));
      const std::size_t complete = static_cast<std::size_t>(in_.gcount()) / row_bytes;
      VECSTASH_RETURN_IF_ERROR(check_finite(path_, block->values.data(), complete, d, first));
      if (complete < n) return Status::corruption(path_.string() + ": read error in the array data");
    } else {
      // float64: each value checked against the float32 range before narrowing.
      wide_.resize(n * d);
      in_.read(reinterpret_cast<char*>(wide_.data()), static_cast<std::streamsize>(n * row_bytes));
      const std::size_t complete = static_cast<std::size_t>(in_.gcount()) / row_bytes;
      for (std::size_t r = 0; r < complete; ++r) {
        for (std::size_t c = 0; c < d; ++c) {
          const double v = wide_[r * d + c];
          if (!std::isfinite(v) || std::fabs(v) > kFloatMax) {
            return not_finite(path_, fmt::format("row {}", first + r), c, v);
          }
          block->values[r * d + c] = static_cast<float>(v);
        }
      }
      if (complete < n)
        return Status::corruption(fmt::format("{}: read error in row {}", path_.string(), first + complete));
    }
    block->rows = n;
    return Status::ok();
  }

  std::filesystem::path path_;
  std::size_t rows_;  ///< rows of the array (its shape)
  std::size_t item_;  ///< bytes per value: 4 or 8
  std::ifstream in_;
  std::vector<double> wide_;
};

// ---- JSONL -------------------------------------------------------------------------------------

/// The rows of a JSONL file, one line at a time, each checked (messages name file:line).
class JsonlRows {
 public:
  JsonlRows(std::filesystem::path path, std::ifstream in)
      : path_(std::move(path)), name_(path_.string()), in_(std::move(in)) {}

  /// Values per row; 0 until the first row was read.
  std::size_t dim() const { return dim_; }

  /// Appends the next row to `*block` (its values, one id and one payload, null where the line has
  /// none; rows + 1): true, or false at the end of the file. Blank lines are skipped.
  Result<bool> append_row(VectorFile* block) {
    while (std::getline(in_, line_)) {
      ++line_no_;
      if (!line_.empty() && line_.back() == '\r') line_.pop_back();
      if (line_.find_first_not_of(" \t") == std::string::npos) continue;
      VECSTASH_RETURN_IF_ERROR(parse_line(block));
      return true;
    }
    if (in_.bad()) return Status::corruption(name_ + ": read error");
    return false;
  }

 private:
  Status parse_line(VectorFile* block) {
    const std::string where = fmt::format("{}:{}", name_, line_no_);
    json obj;
    try {
      obj = json::parse(line_);
    } catch (const json::parse_error& e) {
      // nlohmann's message starts with "[json.exception.parse_error.101] "; the rest says where and why.
      std::string why = e.what();
      if (const auto p = why.find("] "); p != std::string::npos) why.erase(0, p + 2);
      return Status::invalid_argument(fmt::format("{}: not valid JSON: {}", where, why));
    }
    if (!obj.is_object()) {
      return Status::invalid_argument(
          fmt::format("{}: expected an object {{\"id\": ..., \"vector\": [...], \"payload\": {{...}}}}", where));
    }
    for (const auto& [key, value] : obj.items()) {
      if (key != "id" && key != "vector" && key != "payload") {
        return Status::invalid_argument(
            fmt::format("{}: unknown key '{}' (expected \"id\", \"vector\" and \"payload\")", where, key));
      }
    }

    json id = obj.value("id", json());
    if (!id.is_null()) {
      if (id.is_number_integer() && !id.is_number_unsigned()) {
        return Status::invalid_argument(
            fmt::format("{}: id {} is negative (ids are unsigned 64-bit integers or UUIDs)", where, id.dump()));
      }
      if (!id.is_number_unsigned() && !(id.is_string() && !id.get_ref<const std::string&>().empty())) {
        return Status::invalid_argument(
            fmt::format("{}: id {} must be an unsigned 64-bit integer or a UUID string", where, id.dump()));
      }
    }
    json payload = obj.value("payload", json());
    if (!payload.is_null() && !payload.is_object()) {
      return Status::invalid_argument(fmt::format("{}: payload must be a JSON object", where));
    }

    const auto vit = obj.find("vector");
    if (vit == obj.end() || vit->is_null()) return Status::invalid_argument(where + ": no \"vector\"");
    const json& vec = *vit;
    if (!vec.is_array() || vec.empty()) {
      return Status::invalid_argument(where + ": \"vector\" must be a non-empty array of numbers");
    }
    if (dim_ == 0) {
      if (vec.size() > static_cast<std::size_t>(bench::kMaxVecsDim)) {
        return Status::invalid_argument(fmt::format("{}: a vector of {} values is too long", where, vec.size()));
      }
      dim_ = vec.size();
      first_line_ = line_no_;
    } else if (vec.size() != dim_) {
      return Status::invalid_argument(fmt::format("{}: the vector has {} values, but the one on line {} has {}", where,
                                                  vec.size(), first_line_, dim_));
    }
    const std::size_t start = block->values.size();
    block->values.resize(start + dim_);
    float* out = block->values.data() + start;
    for (std::size_t c = 0; c < dim_; ++c) {
      if (!vec[c].is_number()) {
        return Status::invalid_argument(
            fmt::format("{}: vector value {} is {}, not a number", where, c, vec[c].dump()));
      }
      const double v = vec[c].get<double>();
      if (!std::isfinite(v) || std::fabs(v) > kFloatMax)
        return not_finite(path_, fmt::format("line {}", line_no_), c, v);
      out[c] = static_cast<float>(v);
    }
    block->ids.push_back(std::move(id));
    block->payloads.push_back(std::move(payload));
    ++block->rows;
    return Status::ok();
  }

  std::filesystem::path path_;
  std::string name_;
  std::ifstream in_;
  std::string line_;
  std::size_t line_no_ = 0;
  std::size_t dim_ = 0;
  std::size_t first_line_ = 0;  ///< the line that fixed the dimension
};

/// Empties `ids` / `payloads` when every entry is null (the block's lines gave none).
void drop_if_all_null(std::vector<json>* v) {
  if (std::all_of(v->begin(), v->end(), [](const json& j) { return j.is_null(); })) v->clear();
}

/// JSONL rows; open() reads the first row ahead to learn the dimension.
class JsonlStream final : public VectorStream {
 public:
  static Result<std::unique_ptr<VectorStream>> open(const std::filesystem::path& path, std::size_t limit) {
    VECSTASH_RETURN_IF_ERROR(check_is_file(path, "a file"));
    std::ifstream in(path);
    if (!in) return Status::not_found(fmt::format("cannot open {}: {}", path.string(), std::strerror(errno)));
    JsonlRows rows(path, std::move(in));
    VectorFile first;
    auto got = rows.append_row(&first);
    if (!got.is_ok()) return got.status();
    if (!*got) return Status::invalid_argument(path.string() + ": no vectors in file");
    return std::unique_ptr<VectorStream>(std::make_unique<JsonlStream>(std::move(rows), std::move(first), limit));
  }

  JsonlStream(JsonlRows rows, VectorFile first, std::size_t limit)
      : VectorStream(VectorFormat::kJsonl, rows.dim(), std::nullopt, limit),
        rows_(std::move(rows)),
        first_(std::move(first)) {}

 private:
  Status read_rows(std::size_t n, VectorFile* block) override {
    if (first_pending_) {
      block->values = std::move(first_.values);
      block->ids = std::move(first_.ids);
      block->payloads = std::move(first_.payloads);
      block->rows = 1;
      first_pending_ = false;
    }
    while (block->rows < n) {
      auto got = rows_.append_row(block);
      if (!got.is_ok()) return got.status();
      if (!*got) break;
    }
    drop_if_all_null(&block->ids);
    drop_if_all_null(&block->payloads);
    return Status::ok();
  }

  JsonlRows rows_;
  VectorFile first_;  ///< the row open() read ahead
  bool first_pending_ = true;
};

}  // namespace

// ---- VectorStream ------------------------------------------------------------------------------

VectorStream::VectorStream(VectorFormat format, std::size_t dim, std::optional<std::size_t> total, std::size_t limit)
    : format_(format), dim_(dim), limit_(limit) {
  if (total) total_rows_ = limit > 0 ? std::min(*total, limit) : *total;
}

VectorStream::~VectorStream() = default;

Result<std::unique_ptr<VectorStream>> VectorStream::open(const std::filesystem::path& path,
                                                         const ReadOptions& options) {
  VectorFormat format = options.format;
  if (format == VectorFormat::kAuto) {
    auto f = format_from_name(path);
    if (!f.is_ok()) return f.status();
    format = *f;
  }
  switch (format) {
    case VectorFormat::kFvecs:
    case VectorFormat::kBvecs:
      return TexmexStream::open(path, format, options.max_rows);
    case VectorFormat::kNpy:
      return NpyStream::open(path, options.max_rows);
    case VectorFormat::kJsonl:
      return JsonlStream::open(path, options.max_rows);
    case VectorFormat::kAuto:
      break;
  }
  return Status::internal("unresolved vector format");
}

Status VectorStream::next(std::size_t max_rows, VectorFile* block) {
  block->format = format_;
  block->dim = dim_;
  block->rows = 0;
  block->values.clear();
  block->ids.clear();
  block->payloads.clear();
  if (!error_.is_ok()) return error_;
  if (max_rows == 0) return Status::invalid_argument("VectorStream::next: max_rows must be at least 1");
  const std::size_t n = limit_ > 0 ? std::min(max_rows, limit_ - rows_read_) : max_rows;
  if (ended_ || n == 0) return Status::ok();
  if (Status s = read_rows(n, block); !s.is_ok()) {
    block->rows = 0;
    block->values.clear();
    block->ids.clear();
    block->payloads.clear();
    error_ = s;
    return s;
  }
  if (block->rows < n) ended_ = true;
  rows_read_ += block->rows;
  return Status::ok();
}

// ---- dispatch ----------------------------------------------------------------------------------

Result<VectorFormat> parse_vector_format(std::string_view name) {
  if (name == "auto") return VectorFormat::kAuto;
  if (name == "fvecs") return VectorFormat::kFvecs;
  if (name == "bvecs") return VectorFormat::kBvecs;
  if (name == "npy") return VectorFormat::kNpy;
  if (name == "jsonl") return VectorFormat::kJsonl;
  return Status::invalid_argument(fmt::format("unknown format '{}' (auto, fvecs, bvecs, npy or jsonl)", name));
}

std::string_view to_string(VectorFormat format) noexcept {
  switch (format) {
    case VectorFormat::kAuto:
      return "auto";
    case VectorFormat::kFvecs:
      return "fvecs";
    case VectorFormat::kBvecs:
      return "bvecs";
    case VectorFormat::kNpy:
      return "npy";
    case VectorFormat::kJsonl:
      return "jsonl";
  }
  return "auto";
}

Result<VectorFormat> format_from_name(const std::filesystem::path& path) {
  const bool gz = bench::is_gzip_name(path);
  const std::string ext = (gz ? path.stem() : path.filename()).extension().string();
  if (ext == ".fvecs") return VectorFormat::kFvecs;
  if (ext == ".bvecs") return VectorFormat::kBvecs;
  if (!gz && ext == ".npy") return VectorFormat::kNpy;
  if (!gz && (ext == ".jsonl" || ext == ".ndjson")) return VectorFormat::kJsonl;
  if (gz && (ext == ".npy" || ext == ".jsonl" || ext == ".ndjson")) {
    return Status::invalid_argument(
        fmt::format("{}: only .fvecs and .bvecs may be gzip-compressed; decompress it first", path.string()));
  }
  return Status::invalid_argument(fmt::format(
      "{}: cannot tell the format from the name (.fvecs, .bvecs, .npy, .jsonl): give --format", path.string()));
}

Result<VectorFile> read_vector_file(const std::filesystem::path& path, const ReadOptions& options) {
  auto opened = VectorStream::open(path, options);
  if (!opened.is_ok()) return opened.status();
  VectorStream& stream = **opened;
  VectorFile all;
  all.format = stream.format();
  all.dim = stream.dim();
  if (stream.total_rows()) all.values.reserve(*stream.total_rows() * all.dim);
  const std::size_t block_rows = std::max<std::size_t>(1, kReadAllBlockBytes / (all.dim * sizeof(float)));
  // ids / payloads: empty while no row had one; from the first that has one, one per row (null for
  // the rows without).
  auto append = [&all](std::vector<json>* to, std::vector<json>* from, std::size_t rows) {
    if (from->empty() && to->empty()) return;
    to->resize(all.rows);
    if (from->empty()) {
      to->resize(all.rows + rows);
    } else {
      std::move(from->begin(), from->end(), std::back_inserter(*to));
    }
  };
  VectorFile block;
  while (true) {
    VECSTASH_RETURN_IF_ERROR(stream.next(block_rows, &block));
    if (block.rows == 0) break;
    all.values.insert(all.values.end(), block.values.begin(), block.values.end());
    append(&all.ids, &block.ids, block.rows);
    append(&all.payloads, &block.payloads, block.rows);
    all.rows += block.rows;
  }
  return all;
}

Result<VectorFile> read_npy(const std::filesystem::path& path, std::size_t max_rows) {
  ReadOptions options;
  options.format = VectorFormat::kNpy;
  options.max_rows = max_rows;
  return read_vector_file(path, options);
}

Result<VectorFile> read_jsonl(const std::filesystem::path& path, std::size_t max_rows) {
  ReadOptions options;
  options.format = VectorFormat::kJsonl;
  options.max_rows = max_rows;
  return read_vector_file(path, options);
}

Status check_dimension(std::size_t file_dim, std::size_t expected, std::string_view what) {
  if (file_dim == expected) return Status::ok();
  return Status::invalid_argument(fmt::format(
      "dimension mismatch: the file's vectors have {} values, {} has dimension {}", file_dim, what, expected));
}

Status check_dimension(const VectorFile& file, std::size_t expected, std::string_view what) {
  return check_dimension(file.dim, expected, what);
}

// ---- id lists and writing ----------------------------------------------------------------------

Result<std::vector<json>> parse_id_list(std::string_view text, std::string_view what) {
  std::vector<json> ids;
  std::size_t line = 1;
  std::size_t i = 0;
  auto separator = [](char c) { return c == ',' || c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  while (i < text.size()) {
    const char c = text[i];
    if (c == '\n') ++line;
    if (separator(c)) {
      ++i;
      continue;
    }
    if (c == '#') {  // a comment, to the end of the line
      while (i < text.size() && text[i] != '\n') ++i;
      continue;
    }
    std::size_t j = i;
    while (j < text.size() && !separator(text[j])) ++j;
    const std::string_view token = text.substr(i, j - i);
    i = j;
    const bool digits = std::all_of(token.begin(), token.end(), [](char d) { return d >= '0' && d <= '9'; });
    if (digits) {
      std::uint64_t v = 0;
      const auto [end, ec] = std::from_chars(token.data(), token.data() + token.size(), v);
      if (ec != std::errc() || end != token.data() + token.size()) {
        return Status::invalid_argument(
            fmt::format("{}, line {}: id {} does not fit in an unsigned 64-bit integer", what, line, token));
      }
      ids.emplace_back(v);
      continue;
    }
    const bool uuid_chars = std::all_of(token.begin(), token.end(), [](char d) {
      return (d >= '0' && d <= '9') || (d >= 'a' && d <= 'f') || (d >= 'A' && d <= 'F') || d == '-';
    });
    const std::size_t hyphens = static_cast<std::size_t>(std::count(token.begin(), token.end(), '-'));
    if (!uuid_chars || !((token.size() == 32 && hyphens == 0) || (token.size() == 36 && hyphens == 4))) {
      return Status::invalid_argument(
          fmt::format("{}, line {}: '{}' is not a point id (an unsigned integer or a UUID)", what, line, token));
    }
    ids.emplace_back(std::string(token));
  }
  if (ids.empty()) return Status::invalid_argument(fmt::format("{}: no ids", what));
  return ids;
}

Result<std::vector<json>> read_id_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::not_found(fmt::format("{}: cannot open the file", path.string()));
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) return Status::internal(fmt::format("{}: read error", path.string()));
  return parse_id_list(text, path.string());
}

Status write_vector_file(const std::filesystem::path& path, const float* values, std::size_t rows, std::size_t dim) {
  const std::string ext = path.extension().string();
  if (dim == 0) return Status::invalid_argument(fmt::format("{}: vectors of dimension 0", path.string()));
  if (ext == ".fvecs") return bench::write_vecs<float>(path, MatrixView<const float>(values, rows, dim));
  if (ext != ".npy") {
    return Status::invalid_argument(fmt::format("{}: write .fvecs or .npy (chosen by the name)", path.string()));
  }
  // NPY 1.0: magic, version, little-endian u16 header length, the dict padded with spaces to a
  // multiple of 64 bytes (newline last), then the data.
  std::string header = fmt::format("{{'descr': '<f4', 'fortran_order': False, 'shape': ({}, {}), }}", rows, dim);
  while ((10 + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  if (header.size() > 0xFFFF) return Status::internal("npy header too long");
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return Status::invalid_argument(fmt::format("{}: cannot create the file", path.string()));
  const char prefix[] = {'\x93',
                         'N',
                         'U',
                         'M',
                         'P',
                         'Y',
                         1,
                         0,
                         static_cast<char>(header.size() & 0xFF),
                         static_cast<char>(header.size() >> 8)};
  out.write(prefix, sizeof(prefix));
  out.write(header.data(), static_cast<std::streamsize>(header.size()));
  out.write(reinterpret_cast<const char*>(values), static_cast<std::streamsize>(rows * dim * sizeof(float)));
  out.close();
  if (!out) return Status::internal(fmt::format("{}: write error", path.string()));
  return Status::ok();
}

}  // namespace vecstash::tools
