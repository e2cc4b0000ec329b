// `vecstash ingest`, `query`, `inspect`, `anchors` and `model`: clients of a running vecstash server,
// over its REST API (api/include/vecstash/api/client.h).
//
// Results go to stdout (tables, the ingest summary, or JSON with --json); progress and errors go to
// stderr through spdlog. Exit status: 0 success, 1 the server or a file said no (the server's own
// error message is printed), 2 bad flags or flag values.
#pragma once

#include <CLI/CLI.hpp>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace vecstash::tools {

/// The server to talk to; the same flags on every client subcommand.
struct ConnectionArgs {
  std::string url = "http://127.0.0.1:6333";
  std::string api_key;
  int timeout_s = 300;  ///< per request
};

struct IngestArgs {
  ConnectionArgs connection;
  std::string collection;
  std::string file;
  std::string format = "auto";
  std::size_t batch = 256;
  bool create = false;
  std::string distance = "Cosine";
  std::optional<std::string> kind;  ///< code kind of a new collection; i8 when not given
  std::string settings;             ///< JSON object merged into "vecstash" on create
  std::size_t limit = 0;            ///< 0 = every row of the file
  std::uint64_t start_id = 0;
  bool no_wait = false;
  bool calibrate = false;
};

struct QueryArgs {
  ConnectionArgs connection;
  std::string collection;
  std::string vector;  ///< "[0.1, 0.2, ...]"
  std::string file;
  std::string format = "auto";
  std::size_t row = 0;
  std::size_t rows = 1;
  std::size_t limit = 10;
  std::string filter;
  bool with_payload = false;
  bool exact = false;
  bool json = false;
  std::string using_name;       ///< query another space: a registered model or the relative vector
  std::string method;           ///< with a model: relative, procrustes, affine or local ("" = the model's default)
  bool relative_input = false;  ///< with the relative vector: the queries are relative vectors
  std::optional<double> hubness_weight;  ///< with a model: the hubness correction's weight (unset: the model's)
};

struct InspectArgs {
  ConnectionArgs connection;
  std::string collection;
  bool report = false;
  std::size_t sample = 200;
  std::size_t k = 10;
  bool json = false;
};

/// `vecstash anchors set|show|delete`: the anchor set of a collection (docs/API.md, "Anchors").
struct AnchorsArgs {
  enum class Action { kSet, kShow, kDelete };
  Action action = Action::kShow;
  ConnectionArgs connection;
  std::string collection;
  bool json = false;
  // set
  std::optional<std::string> strategy;  ///< unset: ids with --ids/--ids-file, vectors with --file, else kmeans
  std::optional<std::size_t> count;     ///< server default 256
  std::optional<std::uint64_t> seed;    ///< server default 42
  std::string ids;                      ///< "1,2,3"
  std::string ids_file;
  std::string file;  ///< the anchors' vectors (strategy vectors)
  std::string format = "auto";
  bool no_center = false;
  std::string relative_kind;  ///< "" = the server's default (f16)
  std::string relative_name;  ///< "" = the server's default ("relative")
  bool no_relative = false;
  // show
  std::string ids_out;
  std::string vectors_out;
};

/// `vecstash model register|list|delete`: models registered by their embeddings of the anchors.
struct ModelArgs {
  enum class Action { kRegister, kList, kDelete };
  Action action = Action::kList;
  ConnectionArgs connection;
  std::string collection;
  std::string name;
  std::string file;  ///< the model's embeddings of the anchors
  std::string format = "auto";
  std::string ids_file;  ///< ids of the file's rows; empty: the rows are in the anchor set's order
  std::string method;    ///< "" = the server's default (local)
  std::optional<double> lambda;
  std::optional<std::uint32_t> local_neighbours;  ///< unset: the server chooses (leave-one-out)
  std::optional<double> local_temperature;
  std::optional<double> local_weight;
  std::optional<double> hubness_weight;             ///< unset: the server's default (0.5)
  std::optional<std::uint32_t> hubness_neighbours;  ///< unset: 10
  bool json = false;
};

CLI::App* add_ingest_command(CLI::App& app, IngestArgs& args);
CLI::App* add_query_command(CLI::App& app, QueryArgs& args);
CLI::App* add_inspect_command(CLI::App& app, InspectArgs& args);
CLI::App* add_anchors_command(CLI::App& app, AnchorsArgs& args);
CLI::App* add_model_command(CLI::App& app, ModelArgs& args);

/// Upload a vector file in batches (creating the collection first with --create).
int run_ingest(const IngestArgs& args);
/// Nearest neighbours of one vector or of file rows, as a table or JSON.
int run_query(const QueryArgs& args);
/// All collections as a table, or one collection's settings, state, memory and compression report.
int run_inspect(const InspectArgs& args);
/// Set (choose or upload), show or delete a collection's anchor set.
int run_anchors(const AnchorsArgs& args);
/// Register a model from its embeddings of the anchors, list the models, or delete one.
int run_model(const ModelArgs& args);

}  // namespace vecstash::tools
