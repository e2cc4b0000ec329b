// Crash tests: run a writer in a forked child, let it acknowledge writes through a pipe, kill it with
// SIGKILL at a chosen moment, and report the last acknowledged sequence number.
#pragma once

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <thread>

namespace vecstash::testing {

struct KillResult {
  std::string error;        ///< non-empty: the round could not be run (the reason)
  std::uint64_t last = 0;   ///< the last sequence number the writer acknowledged
};

/// `writer(fd)` runs in the child: after each durable write it writes the write's u64 sequence number
/// to fd; it must never return (it is killed). The parent waits for the first acknowledgement (opening
/// a database can be slow on a loaded machine), sleeps `delay`, kills the child and drains the pipe.
inline KillResult run_and_kill(const std::function<void(int fd)>& writer, std::chrono::milliseconds delay) {
  KillResult r;
  int fds[2];
  if (pipe(fds) != 0) return {"pipe() failed", 0};
  const pid_t pid = fork();
  if (pid < 0) return {"fork() failed", 0};
  if (pid == 0) {
    close(fds[0]);
    writer(fds[1]);
    _exit(99);  // a writer must not return
  }
  close(fds[1]);
  std::uint64_t first = 0;
  if (read(fds[0], &first, sizeof first) != static_cast<ssize_t>(sizeof first)) {
    close(fds[0]);
    waitpid(pid, nullptr, 0);
    return {"the writer died early", 0};
  }
  std::this_thread::sleep_for(delay);
  if (kill(pid, SIGKILL) != 0) r.error = "kill() failed";
  int status = 0;
  if (waitpid(pid, &status, 0) != pid) r.error = "waitpid() failed";
  if (r.error.empty() && !WIFSIGNALED(status)) {
    r.error = "the writer exited by itself with " + std::to_string(WEXITSTATUS(status));
  }
  std::uint64_t acked = 0;
  r.last = first;
  while (read(fds[0], &acked, sizeof acked) == static_cast<ssize_t>(sizeof acked)) r.last = acked;
  close(fds[0]);
  return r;
}

}  // namespace vecstash::testing
