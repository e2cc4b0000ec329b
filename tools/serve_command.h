// `vecstash serve`: the REST server over one data directory.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <optional>
#include <string>

namespace vecstash::tools {

struct ServeArgs {
  std::string config_file;
  std::optional<std::string> data_dir, host, api_key, read_only_api_key, log_level;
  std::optional<std::uint16_t> port;
  std::optional<int> threads, io_threads;
  std::string port_file;
  bool print_config = false;
};

CLI::App* add_serve_command(CLI::App& app, ServeArgs& args);
/// Runs until SIGINT/SIGTERM. Exit status: 0 after a clean shutdown, 1 when the server could not
/// start (bad settings, data directory locked or damaged, port taken).
int run_serve(const ServeArgs& args, bool log_level_from_flags);

}  // namespace vecstash::tools
