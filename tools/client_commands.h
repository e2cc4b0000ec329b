// `vecstash ingest`, `vecstash query` and `vecstash inspect`: clients of a running vecstash server,
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
};

struct InspectArgs {
  ConnectionArgs connection;
  std::string collection;
  bool report = false;
  std::size_t sample = 200;
  std::size_t k = 10;
  bool json = false;
};

CLI::App* add_ingest_command(CLI::App& app, IngestArgs& args);
CLI::App* add_query_command(CLI::App& app, QueryArgs& args);
CLI::App* add_inspect_command(CLI::App& app, InspectArgs& args);

/// Upload a vector file in batches (creating the collection first with --create).
int run_ingest(const IngestArgs& args);
/// Nearest neighbours of one vector or of file rows, as a table or JSON.
int run_query(const QueryArgs& args);
/// All collections as a table, or one collection's settings, state, memory and compression report.
int run_inspect(const InspectArgs& args);

}  // namespace vecstash::tools
