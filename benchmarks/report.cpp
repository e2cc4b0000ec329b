#include "benchmarks/report.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <vector>

namespace vecstash::bench {
namespace {

std::string opt(const std::optional<double>& v, int precision = 4) {
  return v ? fmt::format("{:.{}f}", *v, precision) : std::string("-");
}

// 1234567 -> "1.23M": throughputs span six orders of magnitude.
std::string si(double v) {
  if (v >= 1e9) return fmt::format("{:.3g}G", v / 1e9);
  if (v >= 1e6) return fmt::format("{:.3g}M", v / 1e6);
  if (v >= 1e4) return fmt::format("{:.3g}k", v / 1e3);
  return fmt::format("{:.0f}", v);
}

std::string metric_description(const SweepReport& r) {
  if (r.dataset_metric == Metric::kCos) return "cosine (normalised rows, scored as ip)";
  return std::string(to_string(r.search_metric));
}

// A table whose columns are sized to their widest cell; the first `left` columns are left-aligned.
class TextTable {
 public:
  explicit TextTable(std::size_t left) : left_(left) {}
  void add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  std::string render() const {
    std::vector<std::size_t> width;
    for (const auto& row : rows_) {
      if (width.size() < row.size()) width.resize(row.size(), 0);
      for (std::size_t c = 0; c < row.size(); ++c) width[c] = std::max(width[c], row[c].size());
    }
    std::string out;
    for (const auto& row : rows_) {
      std::string line;
      for (std::size_t c = 0; c < row.size(); ++c) {
        if (c) line += "  ";
        line += c < left_ ? fmt::format("{:<{}}", row[c], width[c]) : fmt::format("{:>{}}", row[c], width[c]);
      }
      while (!line.empty() && line.back() == ' ') line.pop_back();
      out += line + "\n";
    }
    return out;
  }

 private:
  std::size_t left_;
  std::vector<std::vector<std::string>> rows_;
};

std::string csv_field(const std::optional<double>& v) { return v ? fmt::format("{:.6g}", *v) : std::string(); }

std::string xml_escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

struct SeriesStyle {
  const char* color;
  const char* dash;  // SVG stroke-dasharray, "" = solid
};

// Families share a hue; within a family the scaling (or scoring) sets shade and dash.
SeriesStyle style_for(std::string_view variant, std::size_t index) {
  static const std::map<std::string_view, SeriesStyle> kStyles = {
      {"f32", {"#000000", ""}},
      {"f16", {"#7f7f7f", ""}},
      {"bf16", {"#8c564b", ""}},
      {"e4m3:none", {"#6baed6", "6,3"}},
      {"e4m3:vector", {"#2171b5", "2,2"}},
      {"e4m3:dim", {"#08306b", ""}},
      {"e5m2:none", {"#74c476", "6,3"}},
      {"e5m2:vector", {"#238b45", "2,2"}},
      {"e5m2:dim", {"#00441b", ""}},
      {"i8:minmax", {"#f16913", ""}},
      {"i8:clip0.1", {"#a63603", "6,3"}},
      {"b1:asym", {"#6a51a3", ""}},
      {"b1:hamming", {"#e7298a", "6,3"}},
  };
  static const char* kFallback[] = {"#1b9e77", "#d95f02", "#7570b3", "#e6ab02", "#66a61e", "#a6761d"};
  const auto it = kStyles.find(variant);
  if (it != kStyles.end()) return it->second;
  return {kFallback[index % std::size(kFallback)], ""};
}

// Ticks of a log axis: 1, 2, 5 times powers of ten inside [lo, hi]; for narrow ranges, where that
// gives fewer than four ticks, every integer multiple (1..9), then every half.
std::vector<double> log_ticks(double lo, double hi) {
  std::vector<double> ticks;
  const std::vector<double> halves = {1, 1.5, 2, 2.5, 3, 3.5, 4, 4.5, 5, 5.5, 6, 6.5, 7, 7.5, 8, 8.5, 9, 9.5};
  for (const auto& mantissas : {std::vector<double>{1, 2, 5}, std::vector<double>{1, 2, 3, 4, 5, 6, 7, 8, 9}, halves}) {
    ticks.clear();
    for (int e = static_cast<int>(std::floor(std::log10(lo))) - 1; e <= static_cast<int>(std::ceil(std::log10(hi)));
         ++e) {
      for (double m : mantissas) {
        const double t = m * std::pow(10.0, e);
        if (t >= lo * 0.999 && t <= hi * 1.001) ticks.push_back(t);
      }
    }
    if (ticks.size() >= 4) break;
  }
  return ticks;
}

std::string tick_label(double v) {
  if (v >= 1.0) return fmt::format("{:g}", v);
  return fmt::format("{:.2g}", v);
}

}  // namespace

std::string format_table(const SweepReport& r) {
  std::string out;
  out += fmt::format("== {}: {} x {}, {} queries, metric {}, {} threads, codes on {} ==\n", r.dataset, r.base_rows,
                     r.dim, r.queries, metric_description(r), r.threads, r.backend);
  for (const auto& note : r.notes) out += "  " + note + "\n";
  const bool ndcg = r.exact_ndcg.has_value();
  const bool rescore = r.rescore_factor > 0;
  const std::size_t r_small = r.rescore_factor * r.k, r_large = r.rescore_factor * r.k_large;

  TextTable t(1);
  std::vector<std::string> head = {
      "code", "pca", "dim", "B/vec", "ratio", fmt::format("recall@{}", r.k), fmt::format("recall@{}", r.k_large)};
  if (ndcg) head.push_back("nDCG@10");
  if (rescore) {
    head.push_back(fmt::format("rs{} recall@{}", r_small, r.k));
    if (ndcg) head.push_back(fmt::format("rs{} nDCG@10", r_small));
    head.push_back(fmt::format("rs{} recall@{}", r_large, r.k_large));
  }
  for (const char* h : {"encode vec/s", "scan q/s", "scan vec/s"}) head.emplace_back(h);
  t.add(head);
  for (const SweepRow& row : r.rows) {
    std::vector<std::string> cells = {row.variant,
                                      pca_label(row.pca_percent),
                                      fmt::format("{}", row.dim),
                                      fmt::format("{}", row.bytes_per_vector),
                                      fmt::format("{:.2f}", row.compression_ratio),
                                      fmt::format("{:.4f}", row.recall_k),
                                      fmt::format("{:.4f}", row.recall_k_large)};
    if (ndcg) cells.push_back(opt(row.ndcg));
    if (rescore) {
      cells.push_back(opt(row.rescore_recall_k));
      if (ndcg) cells.push_back(opt(row.rescore_ndcg));
      cells.push_back(opt(row.rescore_recall_k_large));
    }
    cells.push_back(si(row.encode_vectors_per_s));
    cells.push_back(si(row.scan_queries_per_s));
    cells.push_back(si(row.scan_vectors_per_s));
    t.add(std::move(cells));
  }
  out += t.render();
  out += fmt::format(
      "  B/vec: code bytes{}; ratio: {} float32 bytes / B/vec; pca none = original coordinates, 100% = centred "
      "and rotated (all dims kept)\n",
      r.search_metric == Metric::kL2 ? " + 4 for the stored squared norm (not for hamming)" : "", 4 * r.dim);
  if (ndcg) {
    out +=
        fmt::format("  nDCG@10 of exact float32 search: {:.4f} ({} judged queries)\n", *r.exact_ndcg, r.ndcg_queries);
  }
  if (rescore) {
    out += fmt::format(
        "  rsN: top N candidates from the codes rescored with float32 originals, + originals on disk: "
        "{} x {} B = {} B read per query (k={}), {} x {} B = {} B (k={})\n",
        r_small, 4 * r.dim, r_small * 4 * r.dim, r.k, r_large, 4 * r.dim, r_large * 4 * r.dim, r.k_large);
  }
  return out;
}

std::string to_csv(std::span<const SweepReport> reports) {
  std::string out =
      "dataset,metric,base_rows,dim,queries,threads,train_rows,code,kind,scale,int8_clip_percent,scoring,"
      "pca_percent,pca_dim,explained_variance,bytes_per_vector,compression_ratio,k,recall_at_k,k_large,"
      "recall_at_k_large,ndcg_at_10,encode_vectors_per_s,scan_queries_per_s,scan_vectors_per_s,"
      "rescore_candidates_k,rescore_recall_at_k,rescore_ndcg_at_10,rescore_candidates_k_large,"
      "rescore_recall_at_k_large,rescore_bytes_read_per_query_k,rescore_bytes_read_per_query_k_large\n";
  for (const SweepReport& r : reports) {
    const std::string metric(r.dataset_metric == Metric::kCos ? "cos" : to_string(r.search_metric));
    const bool rescore = r.rescore_factor > 0;
    const std::size_t r_small = r.rescore_factor * r.k, r_large = r.rescore_factor * r.k_large;
    for (const SweepRow& row : r.rows) {
      out += fmt::format(
          "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{:.6g},{},{:.6g},{},{:.6g},{},{:.6g},{},{:.6g},{:.6g},{:.6g},"
          "{},{},{},{},{},{},{}\n",
          r.dataset, metric, r.base_rows, r.dim, r.queries, r.threads, r.train_rows, row.variant, to_string(row.kind),
          to_string(row.scale), row.int8_clip_percent, row.hamming ? "hamming" : to_string(r.search_metric),
          row.pca_percent == kNoPca ? std::string("none") : std::to_string(row.pca_percent), row.dim,
          row.explained_variance, row.bytes_per_vector, row.compression_ratio, r.k, row.recall_k, r.k_large,
          row.recall_k_large, csv_field(row.ndcg), row.encode_vectors_per_s, row.scan_queries_per_s,
          row.scan_vectors_per_s, rescore ? fmt::format("{}", r_small) : "", csv_field(row.rescore_recall_k),
          csv_field(row.rescore_ndcg), rescore ? fmt::format("{}", r_large) : "", csv_field(row.rescore_recall_k_large),
          rescore ? fmt::format("{}", r_small * 4 * r.dim) : "", rescore ? fmt::format("{}", r_large * 4 * r.dim) : "");
    }
  }
  return out;
}

namespace {

// One plot panel: a box on the page and the data ranges it shows (x as log10 of the ratio).
struct Panel {
  double left, top, width, height;
  double lx0, lx1, y0, y1;
  double px(double ratio) const { return left + (std::log10(ratio) - lx0) / (lx1 - lx0) * width; }
  // 10 px of air above and below the data range so labels at recall 1.0 stay inside.
  double py(double recall) const { return top + 10 + (y1 - recall) / (y1 - y0) * (height - 20); }
};

double nice_step(double range) {
  for (double step : {0.005, 0.01, 0.02, 0.05, 0.1, 0.2}) {
    if (range / step <= 10.0) return step;
  }
  return 0.25;
}

void draw_y_axis(std::string& s, const Panel& p, const std::string& title, std::size_t k) {
  s += fmt::format("<text x=\"{}\" y=\"{:.1f}\" font-size=\"14\" font-weight=\"bold\">{}</text>\n", p.left, p.top - 8,
                   xml_escape(title));
  s += "<g font-size=\"12\" fill=\"#333\">\n";
  const double step = nice_step(p.y1 - p.y0);
  for (double t = std::ceil(p.y0 / step - 1e-9) * step; t <= p.y1 + 1e-9; t += step) {
    const double y = p.py(t);
    s += fmt::format("<line x1=\"{}\" y1=\"{:.1f}\" x2=\"{}\" y2=\"{:.1f}\" stroke=\"#e3e3e3\"/>\n", p.left, y,
                     p.left + p.width, y);
    s += fmt::format("<line x1=\"{}\" y1=\"{:.1f}\" x2=\"{}\" y2=\"{:.1f}\" stroke=\"#333\"/>\n", p.left - 5, y, p.left,
                     y);
    s += fmt::format("<text x=\"{}\" y=\"{:.1f}\" text-anchor=\"end\">{:.{}f}</text>\n", p.left - 8, y + 4,
                     std::fabs(t) < 1e-9 ? 0.0 : t, step < 0.01 ? 3 : 2);
  }
  s += "</g>\n";
  s += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#333\"/>\n", p.left,
                   p.top, p.width, p.height);
  const double cy = p.top + p.height / 2;
  s += fmt::format(
      "<text x=\"{0}\" y=\"{1:.1f}\" font-size=\"13\" text-anchor=\"middle\" transform=\"rotate(-90 {0} {1:.1f})\">"
      "recall@{2} vs exact float32</text>\n",
      p.left - 56, cy, k);
}

void draw_axes(std::string& s, const Panel& p, const std::string& title, std::size_t k) {
  draw_y_axis(s, p, title, k);
  s += "<g font-size=\"12\" fill=\"#333\">\n";
  for (double t : log_ticks(std::pow(10.0, p.lx0), std::pow(10.0, p.lx1))) {
    const double x = p.px(t);
    s += fmt::format("<line x1=\"{0:.1f}\" y1=\"{1}\" x2=\"{0:.1f}\" y2=\"{2}\" stroke=\"#e3e3e3\"/>\n", x, p.top,
                     p.top + p.height);
    s += fmt::format("<line x1=\"{0:.1f}\" y1=\"{1}\" x2=\"{0:.1f}\" y2=\"{2}\" stroke=\"#333\"/>\n", x,
                     p.top + p.height, p.top + p.height + 5);
    s += fmt::format("<text x=\"{:.1f}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n", x, p.top + p.height + 19,
                     tick_label(t));
  }
  s += "</g>\n";
  s += fmt::format(
      "<text x=\"{:.1f}\" y=\"{}\" font-size=\"13\" text-anchor=\"middle\">compression ratio vs float32 "
      "(log scale; bytes include stored norms)</text>\n",
      p.left + p.width / 2, p.top + p.height + 38);
}

// The one-byte codes side by side: one column per variant, a marker per PCA level, values written
// out. Answers "which scaling?" at a glance, where the full view's lines overlap.
void draw_detail(std::string& s, const Panel& p, const std::vector<std::string>& variants,
                 const std::vector<int>& levels, const std::vector<const SweepRow*>& rows, std::size_t k) {
  std::string levels_text;
  for (int l : levels) levels_text += (levels_text.empty() ? "" : " and ") + pca_label(l);
  draw_y_axis(s, p, fmt::format("detail: one byte per dimension, PCA {}", levels_text), k);
  const double spacing = p.width / static_cast<double>(variants.size());
  const double offset[2] = {-8, 8};
  for (std::size_t i = 0; i < variants.size(); ++i) {
    const double cx = p.left + spacing * (static_cast<double>(i) + 0.5);
    const SeriesStyle st = style_for(variants[i], i);
    const auto colon = variants[i].find(':');
    const std::string line1 = variants[i].substr(0, colon);
    const std::string line2 = colon == std::string::npos ? "" : variants[i].substr(colon + 1);
    s += fmt::format(
        "<text x=\"{0:.1f}\" y=\"{1}\" font-size=\"12\" text-anchor=\"middle\" fill=\"{2}\">{3}</text>\n"
        "<text x=\"{0:.1f}\" y=\"{4}\" font-size=\"12\" text-anchor=\"middle\" fill=\"{2}\">{5}</text>\n",
        cx, p.top + p.height + 18, st.color, xml_escape(line1), p.top + p.height + 33, xml_escape(line2));
    for (std::size_t l = 0; l < levels.size() && l < 2; ++l) {
      for (const SweepRow* r : rows) {
        if (r->variant != variants[i] || r->pca_percent != levels[l]) continue;
        const double x = cx + offset[l], y = p.py(r->recall_k);
        if (l == 0) {
          s += fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"5\" fill=\"{}\"/>\n", x, y, st.color);
        } else {
          s += fmt::format(
              "<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"9\" height=\"9\" fill=\"#fff\" stroke=\"{}\" "
              "stroke-width=\"2\"/>\n",
              x - 4.5, y - 4.5, st.color);
        }
        s += fmt::format(
            "<text x=\"{:.1f}\" y=\"{:.1f}\" font-size=\"9\" text-anchor=\"{}\" fill=\"#222\">{:.3f}</text>\n",
            l == 0 ? x - 7 : x + 7, y + 3.5, l == 0 ? "end" : "start", r->recall_k);
      }
    }
  }
  // Marker key, under the category labels.
  const double kx = p.left + 8, ky = p.top + p.height + 56;
  s += fmt::format(
      "<circle cx=\"{}\" cy=\"{}\" r=\"5\" fill=\"#555\"/><text x=\"{}\" y=\"{}\" font-size=\"12\">PCA {}</text>\n", kx,
      ky, kx + 12, ky + 4, pca_label(levels[0]) + (levels[0] == kNoPca ? " (original coordinates)" : ""));
  if (levels.size() > 1) {
    s += fmt::format(
        "<rect x=\"{}\" y=\"{}\" width=\"9\" height=\"9\" fill=\"#fff\" stroke=\"#555\" stroke-width=\"2\"/>"
        "<text x=\"{}\" y=\"{}\" font-size=\"12\">PCA {}</text>\n",
        kx + 260 - 4.5, ky - 4.5, kx + 272, ky + 4,
        pca_label(levels[1]) + (levels[1] == 100 ? " (centred and rotated, all dimensions kept)" : ""));
  }
}

void draw_series(std::string& s, const Panel& p, const std::string& clip_id, const std::vector<std::string>& order,
                 const std::map<std::string, std::vector<const SweepRow*>>& series, std::size_t k) {
  s += fmt::format("<defs><clipPath id=\"{}\"><rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\"/></clipPath></defs>\n",
                   clip_id, p.left, p.top, p.width, p.height);
  s += fmt::format("<g clip-path=\"url(#{})\">\n", clip_id);
  for (std::size_t i = 0; i < order.size(); ++i) {
    const auto& pts = series.at(order[i]);
    const SeriesStyle st = style_for(order[i], i);
    std::string points;
    for (const SweepRow* r : pts)
      points += fmt::format("{:.1f},{:.1f} ", p.px(r->compression_ratio), p.py(r->recall_k));
    s += fmt::format("<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"2\"{} points=\"{}\"/>\n", st.color,
                     *st.dash ? fmt::format(" stroke-dasharray=\"{}\"", st.dash) : "", points);
    for (const SweepRow* r : pts) {
      const double x = p.px(r->compression_ratio), y = p.py(r->recall_k);
      s += fmt::format(
          "<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"3.5\" fill=\"{}\"><title>{} pca {}: ratio {:.2f}, "
          "recall@{} {:.4f}</title></circle>\n",
          x, y, st.color, xml_escape(r->variant), pca_label(r->pca_percent), r->compression_ratio, k, r->recall_k);
      s += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" font-size=\"9\" fill=\"{}\">{}</text>\n", x + 4, y - 4,
                       st.color, r->pca_percent == kNoPca ? std::string("orig") : std::to_string(r->pca_percent));
    }
  }
  s += "</g>\n";
}

}  // namespace

std::string render_svg(const SweepReport& r) {
  // Series in the report's order; points by decreasing PCA level (increasing ratio).
  std::vector<std::string> order;
  std::map<std::string, std::vector<const SweepRow*>> series;
  double xmin = 1e300, xmax = 0, ymin = 1.0;
  for (const SweepRow& row : r.rows) {
    if (!series.count(row.variant)) order.push_back(row.variant);
    series[row.variant].push_back(&row);
    xmin = std::min(xmin, row.compression_ratio);
    xmax = std::max(xmax, row.compression_ratio);
    ymin = std::min(ymin, row.recall_k);
  }
  if (order.empty()) {
    xmin = 1;
    xmax = 10;
  }

  // The detail panel: the one-byte-per-dimension codes (float8, int8) at the two largest PCA levels,
  // where the lines of the full view crowd together.
  std::vector<int> levels;
  for (const SweepRow& row : r.rows) {
    if (std::find(levels.begin(), levels.end(), row.pca_percent) == levels.end()) levels.push_back(row.pca_percent);
  }
  if (levels.size() > 2) levels.resize(2);  // rows come in sweep order: "none" first, then decreasing
  std::vector<std::string> byte_variants;
  std::vector<const SweepRow*> byte_rows;
  double zy0 = 1.0;
  for (const SweepRow& row : r.rows) {
    const bool byte_code = row.kind == CodeKind::kE4M3 || row.kind == CodeKind::kE5M2 || row.kind == CodeKind::kI8;
    if (!byte_code || std::find(levels.begin(), levels.end(), row.pca_percent) == levels.end()) continue;
    if (std::find(byte_variants.begin(), byte_variants.end(), row.variant) == byte_variants.end()) {
      byte_variants.push_back(row.variant);
    }
    byte_rows.push_back(&row);
    zy0 = std::min(zy0, row.recall_k);
  }
  const bool zoom = !byte_rows.empty();

  constexpr double kWidth = 1000;
  const Panel full{90,
                   80,
                   660,
                   470,
                   std::log10(xmin) - 0.06,
                   std::log10(std::max(xmax, xmin * 1.5)) + 0.06,
                   std::max(0.0, std::floor(ymin * 10.0 - 0.2) / 10.0),
                   1.0};
  Panel detail = full;
  if (zoom) {
    const double step = nice_step(1.0 - zy0);
    detail = {90, full.top + full.height + 110, 660, 380, 0, 1, std::max(0.0, std::floor((zy0 - 0.005) / step) * step),
              1.0};
  }
  const double height = zoom ? detail.top + detail.height + 75 : full.top + full.height + 60;

  std::string s;
  s += fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{1}\" viewBox=\"0 0 {0} {1}\" "
      "font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\">\n",
      kWidth, height);
  s += fmt::format("<rect width=\"{}\" height=\"{}\" fill=\"#ffffff\"/>\n", kWidth, height);
  s += fmt::format(
      "<text x=\"{}\" y=\"28\" font-size=\"18\" font-weight=\"bold\">{}: compression ratio vs recall@{}</text>\n",
      full.left, xml_escape(r.dataset), r.k);
  s += fmt::format(
      "<text x=\"{}\" y=\"48\" font-size=\"12\" fill=\"#444\">{} x {}, {} queries, {}; at each point: PCA % of "
      "dimensions kept (orig = original coordinates, no PCA)</text>\n",
      full.left, r.base_rows, r.dim, r.queries, xml_escape(metric_description(r)));

  draw_axes(s, full, "all codes", r.k);
  draw_series(s, full, "full", order, series, r.k);
  if (zoom) draw_detail(s, detail, byte_variants, levels, byte_rows, r.k);

  // Legend, right of the full view.
  const double lx = full.left + full.width + 30;
  s += fmt::format("<text x=\"{}\" y=\"{}\" font-size=\"13\" font-weight=\"bold\">code</text>\n", lx, full.top + 4);
  for (std::size_t i = 0; i < order.size(); ++i) {
    const SeriesStyle st = style_for(order[i], i);
    const double y = full.top + 26 + 21.0 * static_cast<double>(i);
    s += fmt::format("<line x1=\"{}\" y1=\"{:.1f}\" x2=\"{}\" y2=\"{:.1f}\" stroke=\"{}\" stroke-width=\"2\"{}/>\n", lx,
                     y, lx + 30, y, st.color, *st.dash ? fmt::format(" stroke-dasharray=\"{}\"", st.dash) : "");
    s += fmt::format("<circle cx=\"{}\" cy=\"{:.1f}\" r=\"3.5\" fill=\"{}\"/>\n", lx + 15, y, st.color);
    s += fmt::format("<text x=\"{}\" y=\"{:.1f}\" font-size=\"12\">{}</text>\n", lx + 38, y + 4, xml_escape(order[i]));
  }
  const double note_y = full.top + 26 + 21.0 * static_cast<double>(order.size()) + 14;
  const char* notes[] = {"scale: none = plain cast,", "vector = per-vector,", "dim = per-dimension;",
                         "i8: min/max or 0.1% clip;", "b1: asymmetric or Hamming"};
  for (std::size_t i = 0; i < std::size(notes); ++i) {
    s += fmt::format("<text x=\"{}\" y=\"{:.1f}\" font-size=\"11\" fill=\"#444\">{}</text>\n", lx,
                     note_y + 14.0 * static_cast<double>(i), notes[i]);
  }
  s += "</svg>\n";
  return s;
}

std::filesystem::path per_dataset_path(const std::filesystem::path& path, std::string_view dataset) {
  std::string name = path.filename().string();
  const auto pos = name.find("{dataset}");
  if (pos != std::string::npos) {
    name.replace(pos, 9, dataset);
  } else {
    const std::string ext = path.extension().string();
    name = path.stem().string() + "-" + std::string(dataset) + ext;
  }
  return path.parent_path() / name;
}

Status write_text_file(const std::filesystem::path& path, std::string_view content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return Status::invalid_argument(fmt::format("cannot write {}", path.string()));
  out.write(content.data(), static_cast<std::streamsize>(content.size()));
  out.close();
  if (!out) return Status::internal(fmt::format("write to {} failed", path.string()));
  return Status::ok();
}

}  // namespace vecstash::bench
