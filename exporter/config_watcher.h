#pragma once
/// --config.auto-reload-interval: notices that the config file changed and asks for a reload.
#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "probes/asio.h"

namespace smtp {

/// Reads the config file every `interval` on the worker executor and calls `changed` (on the
/// probe executor) when its content differs from the last content seen. The path is followed
/// through symlinks at every read, so a Kubernetes ConfigMap update (a symlink swapped to a new
/// directory) is seen like an edit. A content seen once is not reloaded again: a bad config is
/// reported by one failed reload, not one per interval.
class ConfigWatcher {
 public:
  ConfigWatcher(asio::any_io_executor probe_executor, asio::any_io_executor worker_executor,
                std::string path, std::chrono::milliseconds interval,
                std::function<void()> changed);
  ~ConfigWatcher();  // stop()s

  /// Takes the file's content now as the one already loaded, and starts watching.
  void start();
  void stop();

  struct State;  // shared with the watching coroutine

 private:
  std::shared_ptr<State> state_;
};

}  // namespace smtp
