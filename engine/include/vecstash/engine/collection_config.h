// What a collection is: dimension, metric, compression pipeline (optional PCA, then a code kind),
// whether float32 originals are kept for rescoring, the approximate index, and search defaults.
//
// The config is set at creation and persisted with the collection (as JSON inside a versioned blob).
// Its JSON form is also what the REST layer accepts and reports. Defaults are the recommended
// settings; every field is validated by CollectionConfig::validate().
#pragma once

#include <cstddef>
#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>

#include "vecstash/common/status.h"
#include "vecstash/common/types.h"
#include "vecstash/kernels/codec.h"

namespace vecstash::engine {

/// Largest vector dimension a collection accepts.
inline constexpr std::size_t kMaxDim = 65536;

struct PcaConfig {
  /// Components to keep; 0 = choose by variance_fraction. Default 0.
  std::size_t components = 0;
  /// With components == 0: keep the smallest k explaining at least this fraction of the variance.
  /// 1.0 (the default) with components == 0 means no PCA.
  double variance_fraction = 1.0;
  bool enabled() const noexcept { return components > 0 || variance_fraction < 1.0; }
};

struct SearchDefaults {
  /// Candidates rescored with float32 originals = ceil(oversampling * (offset + limit)). Default 4.
  double oversampling = 4.0;
  /// Rescore with originals when they are kept. Default true.
  bool rescore = true;
  /// HNSW efSearch and IVF nprobe used when a query gives none (0 = the index's own default).
  int hnsw_ef = 64;
  int ivf_nprobe = 16;
};

struct CollectionConfig {
  std::size_t dim = 0;                                 ///< required, 1..kMaxDim
  Metric metric = Metric::kCos;                        ///< kCos (rows and queries normalised), kIp or kL2
  PcaConfig pca;                                       ///< default: none
  kernels::CodecOptions codec{.kind = CodeKind::kI8};  ///< default int8
  bool keep_originals = true;                          ///< keep float32 originals for rescoring (default true)
  /// Hold the kept originals in RAM as well as on disk: the fastest rescoring, at dim x 4 bytes per
  /// point. Default false: they are read from disk for the candidates being rescored (Qdrant's
  /// vectors.on_disk; the codes are always in RAM, Qdrant's quantization always_ram).
  bool originals_in_ram = false;
  /// Hold every payload in RAM, parsed: filters on fields without a payload index avoid the disk.
  /// Default false: payloads are read for the points returned and by such filters (Qdrant's
  /// on_disk_payload).
  bool payloads_in_ram = false;
  /// Vectors ingested before calibration are kept as float32; calibration (PCA + codec) is learned
  /// from the first `calibration_sample` vectors, or earlier by an explicit calibrate(). Default 10,000.
  std::size_t calibration_sample = 10000;
  /// FAISS factory-style index string ("" = exact search only): HNSW32, HNSW32,SQ8, IVF1024,Flat,
  /// IVF1024,SQ8, BHNSW32, BIVF1024 (binary ones need b1 codes). Default "".
  std::string index;
  /// HNSW build breadth (efConstruction) for HNSW index strings; 0 = FAISS's default (40). Larger
  /// builds slower and gives a better graph (Qdrant's hnsw_config.ef_construct). [0, 4096].
  int hnsw_ef_construction = 0;
  SearchDefaults search;
  /// Name of the (single) dense vector as the REST API exposes it: nullopt (the default) = an
  /// unnamed vector (plain arrays in JSON); a string, "" included, = a named vector ({"name": [...]}),
  /// as Qdrant distinguishes them. At most 255 characters.
  std::optional<std::string> vector_name;

  /// Checks every field; messages name the field ("pca.variance_fraction must be in (0, 1]").
  Status validate() const;
  /// The metric the code scan uses: b1 codes of unit rows are ranked by L2 to their reconstruction
  /// (see docs/BENCHMARKS.md), cosine otherwise scans as inner product of normalised rows.
  Metric scan_metric() const noexcept;
};

/// JSON form: {"dim":..,"metric":"cos|ip|l2","pca":{"components":..,"variance_fraction":..},
/// "codec":{"kind":"i8","scale":"vector","fp8_center":true,"int8_clip_percent":0},
/// "keep_originals":true,"originals_in_ram":false,"payloads_in_ram":false,"calibration_sample":10000,"index":"","hnsw_ef_construction":0,"search":{...},"vector_name":null}.
/// Missing keys take the defaults; unknown keys and wrong types are InvalidArgument naming the key.
Result<CollectionConfig> config_from_json(const nlohmann::json& j);
nlohmann::json config_to_json(const CollectionConfig& config);

/// A collection name: 1..255 characters from [A-Za-z0-9_.-], not starting with '.'.
Status validate_collection_name(const std::string& name);

}  // namespace vecstash::engine
