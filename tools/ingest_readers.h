// Vector files for `vecstash ingest` and `vecstash query --file`:
//   .fvecs / .bvecs (optionally .gz)  TEXMEX, read through zlib (which reads plain files too); bvecs become float
//   .npy                              a 2-D float32 ('<f4') or float64 ('<f8') array, C order
//   .jsonl / .ndjson                  one object per line: {"id": u64 or string, "vector": [numbers],
//                                     "payload": {...}}; id and payload optional, blank lines skipped
// Every reader checks what it reads: malformed headers, unsupported dtypes, ragged rows, truncated
// data and values that are not finite float32 are InvalidArgument or Corruption errors naming the
// file and the row (line for JSONL); a missing file is NotFound. A file without vectors is an error.
// VectorStream reads a file a block of rows at a time (`vecstash ingest`, memory bounded by the block);
// read_vector_file reads every block of one and concatenates them.
//
// Thread safety: free functions without shared state; a VectorStream is used by one thread at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string_view>
#include <vector>

#include "vecstash/common/status.h"

namespace vecstash::tools {

enum class VectorFormat { kAuto, kFvecs, kBvecs, kNpy, kJsonl };

/// "auto", "fvecs", "bvecs", "npy" or "jsonl".
Result<VectorFormat> parse_vector_format(std::string_view name);
std::string_view to_string(VectorFormat format) noexcept;

/// The format a file name implies: .fvecs[.gz], .bvecs[.gz], .npy, .jsonl / .ndjson. InvalidArgument
/// for any other name (pass the format explicitly then).
Result<VectorFormat> format_from_name(const std::filesystem::path& path);

/// Vectors read from one file: `rows` x `dim` float32, row-major. `ids` and `payloads` are empty,
/// or hold one entry per row (JSONL only; null where the line gave none).
struct VectorFile {
  VectorFormat format = VectorFormat::kAuto;
  std::size_t rows = 0;
  std::size_t dim = 0;
  std::vector<float> values;
  std::vector<nlohmann::json> ids;
  std::vector<nlohmann::json> payloads;

  const float* row(std::size_t i) const { return values.data() + i * dim; }
};

struct ReadOptions {
  VectorFormat format = VectorFormat::kAuto;  ///< [auto] kAuto: from the file name
  std::size_t max_rows = 0;                   ///< [0] stop after this many rows; 0 reads all
};

/// The rows of one vector file, a block at a time: memory for one block (and a read buffer of the same
/// size), whatever the size of the file. open() reads the header, and for .fvecs / .bvecs / JSONL the
/// start of the first row, so dim() is known before the first block; a file without vectors fails
/// there. Every check of read_vector_file applies; a problem further into the file is the error of the
/// next() call that reaches it, and of every call after that one.
/// Thread safety: one thread at a time.
class VectorStream {
 public:
  /// Open a vector file in the given (or implied) format; `options.max_rows` caps the rows of all
  /// next() calls together (0: every row).
  static Result<std::unique_ptr<VectorStream>> open(const std::filesystem::path& path, const ReadOptions& options = {});

  virtual ~VectorStream();
  VectorStream(const VectorStream&) = delete;
  VectorStream& operator=(const VectorStream&) = delete;

  VectorFormat format() const noexcept { return format_; }
  /// Values per row (>= 1).
  std::size_t dim() const noexcept { return dim_; }
  /// The rows all next() calls will give together (max_rows applied), when the file tells it up front:
  /// the shape of a .npy file, the size of an uncompressed .fvecs / .bvecs file over its row size.
  /// nullopt for gzip-compressed and JSONL files.
  std::optional<std::size_t> total_rows() const noexcept { return total_rows_; }
  /// Rows returned by next() so far: the file row number of the next block's first row.
  std::size_t rows_read() const noexcept { return rows_read_; }

  /// The next up to `max_rows` (>= 1) rows into `*block`, replacing what it held (its buffers are
  /// reused): `rows` x `dim` values, and `ids` / `payloads` empty or one per row as in VectorFile (for
  /// this block alone). Fewer rows only at the end of the file (or of max_rows); block->rows == 0 once
  /// the end is reached. On an error the block is left empty.
  Status next(std::size_t max_rows, VectorFile* block);

 protected:
  /// `limit` is ReadOptions::max_rows; `total` the file's rows when known (before the limit).
  VectorStream(VectorFormat format, std::size_t dim, std::optional<std::size_t> total, std::size_t limit);

  /// Appends `n` (>= 1) rows to `*block`, which next() has emptied and given the format and dim;
  /// fewer only at the end of the file. Sets block->rows, and ids / payloads when the format has them.
  virtual Status read_rows(std::size_t n, VectorFile* block) = 0;

 private:
  VectorFormat format_;
  std::size_t dim_;
  std::optional<std::size_t> total_rows_;
  std::size_t limit_;
  std::size_t rows_read_ = 0;
  bool ended_ = false;
  Status error_;  ///< the first error, returned by every later next()
};

/// Read a vector file in the given (or implied) format: every block of a VectorStream, concatenated.
Result<VectorFile> read_vector_file(const std::filesystem::path& path, const ReadOptions& options = {});

/// read_vector_file with the format given (max_rows as in ReadOptions).
Result<VectorFile> read_npy(const std::filesystem::path& path, std::size_t max_rows = 0);
Result<VectorFile> read_jsonl(const std::filesystem::path& path, std::size_t max_rows = 0);

/// InvalidArgument naming both dimensions when the file's vectors do not have `expected` values.
Status check_dimension(const VectorFile& file, std::size_t expected, std::string_view what);
/// The same for vectors of `file_dim` values (a VectorStream's dim()).
Status check_dimension(std::size_t file_dim, std::size_t expected, std::string_view what);

/// Point ids from text: tokens separated by commas, spaces or line breaks; lines starting with '#'
/// are comments. A token of digits is an unsigned 64-bit id (a JSON number), a token of 32 hex
/// digits or a hyphenated UUID (36 characters) a UUID id (a JSON string; the server checks it
/// further). `what` names the source in messages (a flag or a file). An empty list is an error.
Result<std::vector<nlohmann::json>> parse_id_list(std::string_view text, std::string_view what);
/// parse_id_list() of a whole file (NotFound when it cannot be opened).
Result<std::vector<nlohmann::json>> read_id_file(const std::filesystem::path& path);

/// Write `rows` x `dim` float32 values as .fvecs or .npy ('<f4', C order), chosen by the file name
/// (InvalidArgument for any other name). Replaces an existing file.
Status write_vector_file(const std::filesystem::path& path, const float* values, std::size_t rows, std::size_t dim);

}  // namespace vecstash::tools
