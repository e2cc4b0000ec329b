#include "ingest_readers.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <bit>
#include <charconv>
#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>
#include <limits>
#include <optional>
#include <string>
#include <utility>

#include "benchmarks/vecs_io.h"

namespace vecstash::tools {
namespace {

using nlohmann::json;

static_assert(std::endian::native == std::endian::little, ".npy '<f4'/'<f8' data is read as native");

constexpr float kFloatMax = std::numeric_limits<float>::max();

Status not_finite(const std::filesystem::path& path, std::string_view where, std::size_t col, double v) {
  return Status::invalid_argument(
      fmt::format("{}: {}, value {}: {} is not a finite float32 number", path.string(), where, col, v));
}

/// NaN, infinity or out-of-range values anywhere in the rows (the server would reject the batch later).
Status check_finite(const std::filesystem::path& path, const VectorFile& f) {
  for (std::size_t r = 0; r < f.rows; ++r) {
    const float* row = f.row(r);
    for (std::size_t c = 0; c < f.dim; ++c) {
      if (!std::isfinite(row[c])) return not_finite(path, fmt::format("row {}", r), c, row[c]);
    }
  }
  return Status::ok();
}

Result<bench::FloatMatrix> read_bvecs_as_float(const std::filesystem::path& path, std::size_t max_rows) {
  auto bytes = bench::read_vecs<std::uint8_t>(path, max_rows);
  if (!bytes.is_ok()) return bytes.status();
  bench::FloatMatrix out(bytes->rows, bytes->cols);
  std::copy(bytes->data.begin(), bytes->data.end(), out.data.begin());
  return out;
}

/// .fvecs / .bvecs by the format asked for, whatever the name (read_float_vectors goes by the name).
Result<VectorFile> read_texmex(const std::filesystem::path& path, VectorFormat format, std::size_t max_rows) {
  auto m =
      format == VectorFormat::kFvecs ? bench::read_vecs<float>(path, max_rows) : read_bvecs_as_float(path, max_rows);
  if (!m.is_ok()) return m.status();
  VectorFile f;
  f.format = format;
  f.rows = m->rows;
  f.dim = m->cols;
  f.values = std::move(m->data);
  VECSTASH_RETURN_IF_ERROR(check_finite(path, f));
  return f;
}

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

}  // namespace

Result<VectorFile> read_npy(const std::filesystem::path& path, std::size_t max_rows) {
  const std::string name = path.string();
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return Status::not_found("file not found: " + name);
  if (std::filesystem::is_directory(path, ec)) return Status::invalid_argument(name + " is a directory, not a file");
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
  if (static_cast<std::size_t>(in.gcount()) != header_len) return Status::corruption(name + ": truncated .npy header");
  auto header = NpyHeaderParser(text, name).parse();
  if (!header.is_ok()) return header.status();

  const std::string& descr = *header->descr;
  std::size_t item = 0;
  if (descr == "<f4") {
    item = 4;
  } else if (descr == "<f8") {
    item = 8;
  } else if (descr == ">f4" || descr == ">f8") {
    return Status::invalid_argument(
        fmt::format("{}: dtype '{}' is big-endian; save it little-endian (a.astype('<f4')) to ingest it", name, descr));
  } else {
    return Status::invalid_argument(fmt::format(
        "{}: dtype '{}' is not supported: use float32 ('<f4') or float64 ('<f8'), e.g. a.astype(numpy.float32)", name,
        descr));
  }
  if (*header->fortran_order) {
    return Status::invalid_argument(name + ": Fortran-order arrays are not supported: save numpy.ascontiguousarray(a)");
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
  if (rows == 0)
    return Status::invalid_argument(fmt::format("{}: no vectors in file (shape {})", name, shape_string(shape)));
  const std::uint64_t data_bytes = file_size - data_offset;
  const std::uint64_t row_bytes = dim * item;
  if (rows > data_bytes / row_bytes || rows * row_bytes != data_bytes) {
    const bool short_file = rows > data_bytes / row_bytes;
    return Status::corruption(fmt::format("{}: {}: shape {} of {} needs {} data bytes, the file holds {}", name,
                                          short_file ? "truncated" : "trailing bytes after the array",
                                          shape_string(shape), descr, rows * row_bytes, data_bytes));
  }

  VectorFile f;
  f.format = VectorFormat::kNpy;
  f.rows = static_cast<std::size_t>(max_rows > 0 ? std::min<std::uint64_t>(rows, max_rows) : rows);
  f.dim = static_cast<std::size_t>(dim);
  f.values.resize(f.rows * f.dim);
  in.seekg(static_cast<std::streamoff>(data_offset));
  if (item == 4) {
    const auto want = static_cast<std::streamsize>(f.values.size() * sizeof(float));
    in.read(reinterpret_cast<char*>(f.values.data()), want);
    if (in.gcount() != want) return Status::corruption(name + ": read error in the array data");
    VECSTASH_RETURN_IF_ERROR(check_finite(path, f));
  } else {
    // float64: one row at a time, each value checked against the float32 range before narrowing.
    std::vector<double> row(f.dim);
    const auto want = static_cast<std::streamsize>(f.dim * sizeof(double));
    for (std::size_t r = 0; r < f.rows; ++r) {
      in.read(reinterpret_cast<char*>(row.data()), want);
      if (in.gcount() != want) return Status::corruption(fmt::format("{}: read error in row {}", name, r));
      for (std::size_t c = 0; c < f.dim; ++c) {
        if (!std::isfinite(row[c]) || std::fabs(row[c]) > kFloatMax) {
          return not_finite(path, fmt::format("row {}", r), c, row[c]);
        }
        f.values[r * f.dim + c] = static_cast<float>(row[c]);
      }
    }
  }
  return f;
}

// ---- JSONL -------------------------------------------------------------------------------------

Result<VectorFile> read_jsonl(const std::filesystem::path& path, std::size_t max_rows) {
  const std::string name = path.string();
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return Status::not_found("file not found: " + name);
  if (std::filesystem::is_directory(path, ec)) return Status::invalid_argument(name + " is a directory, not a file");
  std::ifstream in(path);
  if (!in) return Status::not_found(fmt::format("cannot open {}: {}", name, std::strerror(errno)));

  VectorFile f;
  f.format = VectorFormat::kJsonl;
  bool any_id = false, any_payload = false;
  std::size_t first_line = 0;  // the line that fixed the dimension
  std::string line;
  std::size_t line_no = 0;
  while ((max_rows == 0 || f.rows < max_rows) && std::getline(in, line)) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    const std::string where = fmt::format("{}:{}", name, line_no);
    json obj;
    try {
      obj = json::parse(line);
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
      any_id = true;
    }
    json payload = obj.value("payload", json());
    if (!payload.is_null()) {
      if (!payload.is_object())
        return Status::invalid_argument(fmt::format("{}: payload must be a JSON object", where));
      any_payload = true;
    }

    const auto vit = obj.find("vector");
    if (vit == obj.end() || vit->is_null()) return Status::invalid_argument(where + ": no \"vector\"");
    const json& vec = *vit;
    if (!vec.is_array() || vec.empty()) {
      return Status::invalid_argument(where + ": \"vector\" must be a non-empty array of numbers");
    }
    if (f.rows == 0) {
      if (vec.size() > static_cast<std::size_t>(bench::kMaxVecsDim)) {
        return Status::invalid_argument(fmt::format("{}: a vector of {} values is too long", where, vec.size()));
      }
      f.dim = vec.size();
      first_line = line_no;
    } else if (vec.size() != f.dim) {
      return Status::invalid_argument(fmt::format("{}: the vector has {} values, but the one on line {} has {}", where,
                                                  vec.size(), first_line, f.dim));
    }
    f.values.resize((f.rows + 1) * f.dim);
    float* out = f.values.data() + f.rows * f.dim;
    for (std::size_t c = 0; c < f.dim; ++c) {
      if (!vec[c].is_number()) {
        return Status::invalid_argument(
            fmt::format("{}: vector value {} is {}, not a number", where, c, vec[c].dump()));
      }
      const double v = vec[c].get<double>();
      if (!std::isfinite(v) || std::fabs(v) > kFloatMax) return not_finite(path, fmt::format("line {}", line_no), c, v);
      out[c] = static_cast<float>(v);
    }
    f.ids.push_back(std::move(id));
    f.payloads.push_back(std::move(payload));
    ++f.rows;
  }
  if (in.bad()) return Status::corruption(name + ": read error");
  if (f.rows == 0) return Status::invalid_argument(name + ": no vectors in file");
  if (!any_id) f.ids.clear();
  if (!any_payload) f.payloads.clear();
  return f;
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
  VectorFormat format = options.format;
  if (format == VectorFormat::kAuto) {
    auto f = format_from_name(path);
    if (!f.is_ok()) return f.status();
    format = *f;
  }
  switch (format) {
    case VectorFormat::kFvecs:
    case VectorFormat::kBvecs:
      return read_texmex(path, format, options.max_rows);
    case VectorFormat::kNpy:
      return read_npy(path, options.max_rows);
    case VectorFormat::kJsonl:
      return read_jsonl(path, options.max_rows);
    case VectorFormat::kAuto:
      break;
  }
  return Status::internal("unresolved vector format");
}

Status check_dimension(const VectorFile& file, std::size_t expected, std::string_view what) {
  if (file.dim == expected) return Status::ok();
  return Status::invalid_argument(fmt::format(
      "dimension mismatch: the file's vectors have {} values, {} has dimension {}", file.dim, what, expected));
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
