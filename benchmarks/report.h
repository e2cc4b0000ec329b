// Output of the compression sweep: an aligned terminal table, CSV, and an SVG plot of compression
// ratio (x, log scale) against recall@k (y), one polyline per code variant with its PCA levels as
// labelled points, plus a detail panel comparing the one-byte codes (float8 scalings, int8) at the
// first two PCA levels. The SVG is drawn here (no plotting library).
// Thread safety: pure functions, except the file writers, which write the named file.
#pragma once

#include <filesystem>
#include <span>
#include <string>

#include "benchmarks/compression_sweep.h"
#include "vecstash/common/status.h"

namespace vecstash::bench {

/// Heading, notes and one aligned row per configuration, ending with a newline.
std::string format_table(const SweepReport& report);

/// CSV with a header row and one row per configuration of every report (a `dataset` column tells
/// them apart). Empty optional values are empty fields.
std::string to_csv(std::span<const SweepReport> reports);

/// A standalone SVG document (UTF-8) for one report.
std::string render_svg(const SweepReport& report);

/// The file for one data set's plot when several are written: "plot.svg" -> "plot-sift10k.svg";
/// "{dataset}" in the name is replaced instead when present.
std::filesystem::path per_dataset_path(const std::filesystem::path& path, std::string_view dataset);

/// Write `content` to `path` (replacing it). InvalidArgument naming the path when that fails.
Status write_text_file(const std::filesystem::path& path, std::string_view content);

}  // namespace vecstash::bench
