// `vecstash bench crossmodel`: method names, the CSV and the report's choice of the best configuration
// (the runs themselves need real embeddings and are in docs/BENCHMARKS.md).
#include "benchmarks/crossmodel_bench.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <tuple>
#include <vector>

namespace vecstash::bench {
namespace {

TEST(CrossModelBench, MethodNames) {
  for (const auto& [name, method, hub] :
       std::vector<std::tuple<std::string, engine::CrossMethod, bool>>{
           {"relative", engine::CrossMethod::kRelative, false},
           {"procrustes", engine::CrossMethod::kProcrustes, false},
           {"affine+hubness", engine::CrossMethod::kAffine, true},
           {"local+hubness", engine::CrossMethod::kLocal, true}}) {
    auto m = parse_bench_method(name);
    ASSERT_TRUE(m.is_ok()) << name << ": " << m.status().to_string();
    EXPECT_EQ(m->method, method) << name;
    EXPECT_EQ(m->hubness, hub) << name;
  }
  for (const char* bad : {"relative+hubness", "+hubness", "local+", "hubness", "local+hubness+hubness", "LOCAL", ""}) {
    EXPECT_EQ(parse_bench_method(bad).status().code(), StatusCode::kInvalidArgument) << bad;
  }
}

std::vector<CrossModelRow> sample_rows() {
  return {
      {"A->A", "f32", "", 0, "native", 0.6, 0.7, 0, 1000, ""},
      {"B->B", "f32", "", 0, "native", 0.5, 0.6, 0, 2000, ""},
      {"B->A", "f32", "mixed", 1024, "local", 0.44, 0.55, 0.3, 900, "k 32 t 0.1 w 1 loo 0.7500"},
      {"B->A", "f32", "mixed", 1024, "local+hubness", 0.46, 0.57, 0.3, 850, "k 32 t 0.1 w 1 loo 0.7500; hubness k 10 w 0.5"},
      {"B->A", "f32", "mixed", 2048, "local+hubness", 0.49, 0.60, 0.6, 800, ""},  // over 1,024: not "best"
  };
}

TEST(CrossModelBench, CsvHasOneLinePerRowAndEveryColumn) {
  const std::string csv = crossmodel_rows_to_csv(sample_rows());
  EXPECT_EQ(csv.rfind("direction,corpus_kind,strategy,anchors,method,ndcg10,recall10,setup_s,queries_per_s,params\n", 0),
            0u);
  EXPECT_NE(csv.find("B->A,f32,mixed,1024,local+hubness,0.4600,0.5700,0.30,850,k 32 t 0.1 w 1 loo 0.7500; hubness k 10 w 0.5\n"),
            std::string::npos)
      << csv;
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 6);
}

TEST(CrossModelBench, ReportNamesTheBestConfigurationWithAtMost1024Anchors) {
  CrossModelOptions o;
  o.methods = {"local", "local+hubness"};
  const std::string report = format_crossmodel_report(sample_rows(), o);
  // Target: 90 % of min(0.6, 0.5) = 0.45; the best at <= 1,024 anchors is local+hubness, 0.46 = 92.0 %.
  EXPECT_NE(report.find("the target is 90 % of the lower, 0.4500"), std::string::npos) << report;
  EXPECT_NE(report.find("1024 anchors by mixed, local+hubness — nDCG@10 0.4600 = 92.0 %"), std::string::npos) << report;
  EXPECT_NE(report.find("| 1024 | mixed | 0.4400 | 0.4600 | 92.0 % |"), std::string::npos) << report;
  EXPECT_NE(report.find("| 2048 | mixed | | 0.4900 | 98.0 % |"), std::string::npos) << report;
}

}  // namespace
}  // namespace vecstash::bench
