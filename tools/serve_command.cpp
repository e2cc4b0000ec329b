#include "serve_command.h"

#include <malloc.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>

#include "vecstash/api/server.h"
#include "vecstash/api/server_config.h"
#include "vecstash/api/service.h"
#include "vecstash/engine/engine.h"

namespace vecstash::tools {

CLI::App* add_serve_command(CLI::App& app, ServeArgs& args) {
  CLI::App* cmd = app.add_subcommand(
      "serve", "Run the REST server (Qdrant-compatible API plus vecstash's compression endpoints) on a data directory");
  cmd->fallthrough();
  cmd->add_option("--config", args.config_file, "JSON settings file (keys in docs/API.md)")->check(CLI::ExistingFile);
  cmd->add_option("--data-dir", args.data_dir, "Database directory (created if missing) [vecstash-data]");
  cmd->add_option("--host", args.host, "Address to bind [127.0.0.1]; 0.0.0.0 exposes the server to the network");
  cmd->add_option("--port", args.port, "TCP port [6333]; 0 picks a free one (see --port-file)");
  cmd->add_option("--port-file", args.port_file, "Write the port listened on to this file once ready");
  cmd->add_option("--api-key", args.api_key, "Require this key (api-key header or Authorization: Bearer)");
  cmd->add_option("--read-only-api-key", args.read_only_api_key, "A second key that may only read");
  cmd->add_option("--threads", args.threads, "Kernel threads per search call [1] (0 = all cores)")
      ->check(CLI::Range(0, 1024));
  cmd->add_option("--io-threads", args.io_threads, "Socket threads [2]")->check(CLI::Range(1, 256));
  cmd->add_option("--log-level", args.log_level, "trace, debug, info, warn, error [info]");
  cmd->add_flag("--print-config", args.print_config, "Print the effective settings and exit");
  cmd->footer(
      "Settings: defaults < --config file < VECSTASH_* environment variables < flags. Environment variables:\n"
      "VECSTASH_HOST, VECSTASH_PORT, VECSTASH_DATA_DIR, VECSTASH_API_KEY, VECSTASH_READ_ONLY_API_KEY,\n"
      "VECSTASH_THREADS, VECSTASH_MAX_BODY_MB, ... (every key of docs/API.md, upper-cased).");
  return cmd;
}

int run_serve(const ServeArgs& args, bool log_level_from_flags) {
  api::ServerConfig cfg;
  if (!args.config_file.empty()) {
    const Status s = api::apply_config_file(args.config_file, &cfg);
    if (!s.is_ok()) {
      spdlog::error("{}", s.message());
      return 1;
    }
  }
  if (const Status s = api::apply_environment(&cfg); !s.is_ok()) {
    spdlog::error("{}", s.message());
    return 1;
  }
  if (args.data_dir) cfg.data_dir = *args.data_dir;
  if (args.host) cfg.host = *args.host;
  if (args.port) cfg.port = *args.port;
  if (args.api_key) cfg.api_key = *args.api_key;
  if (args.read_only_api_key) cfg.read_only_api_key = *args.read_only_api_key;
  if (args.threads) cfg.threads = *args.threads;
  if (args.io_threads) cfg.io_threads = *args.io_threads;
  if (args.log_level) cfg.log_level = *args.log_level;
  if (const Status s = api::validate(cfg); !s.is_ok()) {
    spdlog::error("settings: {}", s.message());
    return 1;
  }
  if (args.print_config) {
    for (const std::string& line : api::describe(cfg)) std::printf("%s\n", line.c_str());
    return 0;
  }
  if (!log_level_from_flags) spdlog::set_level(spdlog::level::from_str(cfg.log_level));
  if (cfg.host != "127.0.0.1" && cfg.host != "::1" && cfg.api_key.empty()) {
    spdlog::warn("listening on {} without an API key: anyone who can reach this address can read and write", cfg.host);
  }
  if (cfg.api_key.empty() && !cfg.read_only_api_key.empty()) {
    spdlog::warn("a read-only key without a full-access key: no one can write");
  }

  engine::EngineOptions eo;
  eo.threads = cfg.threads;
  eo.pool_threads = cfg.pool_threads;
  eo.pool_queue = cfg.pool_queue;
  eo.sync_writes = cfg.sync_writes;
  eo.block_cache_mb = cfg.block_cache_mb;
  eo.use_gpu = cfg.use_gpu;
  // Request bodies (a batch of vectors is megabytes) come and go: with glibc's default, the mmap
  // threshold rises to the largest block freed, and later bodies are carved from the heaps, which keep
  // their pages after the request. A fixed threshold keeps large blocks in their own mappings (given
  // back when freed) and the process's RSS at what the collections hold.
  mallopt(M_MMAP_THRESHOLD, 256 << 10);
  mallopt(M_TRIM_THRESHOLD, 1 << 20);
  spdlog::info("opening {}", cfg.data_dir);
  auto engine = engine::Engine::open(cfg.data_dir, eo);
  if (!engine) {
    spdlog::error("cannot open the data directory {}: {}", cfg.data_dir, engine.status().to_string());
    return 1;
  }
  std::unique_ptr<engine::Engine> eng = std::move(engine).value();
  spdlog::info("{} collection(s)", eng->list_collections().size());

  api::ServiceOptions so;
  so.api_key = cfg.api_key;
  so.read_only_api_key = cfg.read_only_api_key;
  so.limits = cfg.limits;
  so.sync_writes = cfg.sync_writes;
  auto service = std::make_unique<api::Service>(*eng, so);

  api::ServerOptions opts;
  opts.host = cfg.host;
  opts.port = cfg.port;
  opts.io_threads = cfg.io_threads;
  opts.max_body_bytes = cfg.max_body_mb << 20;
  opts.read_timeout_s = cfg.read_timeout_s;
  opts.idle_timeout_s = cfg.idle_timeout_s;
  opts.max_concurrent_requests = cfg.max_concurrent_requests;
  opts.shutdown_timeout_s = cfg.shutdown_timeout_s;
  auto server = api::HttpServer::start(*service, eng->pool(), opts);
  if (!server) {
    spdlog::error("{}", server.status().message());
    return 1;
  }
  const std::uint16_t port = server.value()->port();
  spdlog::info("listening on http://{}:{} (data: {}, auth: {})", cfg.host, port, cfg.data_dir,
               cfg.api_key.empty() && cfg.read_only_api_key.empty() ? "none" : "API key");
  if (!args.port_file.empty()) {
    // Written to a temporary name and renamed, so a reader never sees a partial number.
    const std::string tmp = args.port_file + ".tmp";
    {
      std::ofstream out(tmp);
      out << port << "\n";
    }
    std::error_code ec;
    std::filesystem::rename(tmp, args.port_file, ec);
    if (ec) spdlog::warn("cannot write {}: {}", args.port_file, ec.message());
  }
  server.value()->run_until_signal();
  spdlog::info("stopped accepting; closing the database");
  // The engine first: its pool finishes any job still queued while the server's objects exist.
  eng.reset();
  server.value().reset();
  service.reset();
  spdlog::info("shut down cleanly");
  return 0;
}

}  // namespace vecstash::tools
