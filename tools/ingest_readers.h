// Vector files for `vecstash ingest` and `vecstash query --file`:
//   .fvecs / .bvecs (optionally .gz)  TEXMEX, read through benchmarks/vecs_io.h (bvecs become float)
//   .npy                              a 2-D float32 ('<f4') or float64 ('<f8') array, C order
//   .jsonl / .ndjson                  one object per line: {"id": u64 or string, "vector": [numbers],
//                                     "payload": {...}}; id and payload optional, blank lines skipped
// Every reader checks what it reads: malformed headers, unsupported dtypes, ragged rows, truncated
// data and values that are not finite float32 are InvalidArgument or Corruption errors naming the
// file and the row (line for JSONL); a missing file is NotFound. A file without vectors is an error.
//
// Thread safety: free functions without shared state.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
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

/// Read a vector file in the given (or implied) format.
Result<VectorFile> read_vector_file(const std::filesystem::path& path, const ReadOptions& options = {});

/// The single readers behind read_vector_file (max_rows as in ReadOptions).
Result<VectorFile> read_npy(const std::filesystem::path& path, std::size_t max_rows = 0);
Result<VectorFile> read_jsonl(const std::filesystem::path& path, std::size_t max_rows = 0);

/// InvalidArgument naming both dimensions when the file's vectors do not have `expected` values.
Status check_dimension(const VectorFile& file, std::size_t expected, std::string_view what);

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
