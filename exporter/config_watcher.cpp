#include "exporter/config_watcher.h"

#include <functional>
#include <optional>

#include "exporter/config.h"
#include "exporter/log.h"

namespace smtp {

struct ConfigWatcher::State {
  asio::any_io_executor probe;
  asio::any_io_executor worker;
  std::string path;
  std::chrono::milliseconds interval;
  std::function<void()> changed;
  asio::steady_timer timer;
  std::optional<std::size_t> last_seen;  // a hash of the content last seen
  bool stopped = false;
};

namespace {

// On the worker: the file's content as a hash, or nothing if it cannot be read right now (in
// the middle of a swap, say: the next round will see it).
asio::awaitable<std::optional<std::size_t>> content_hash(std::string path) {
  try {
    co_return std::hash<std::string>{}(read_config_text(path));
  } catch (const ConfigError& e) {
    log::write(log::Level::kDebug, "config watch: cannot read the file", {{"err", e.what()}});
  }
  co_return std::nullopt;
}

asio::awaitable<void> watch(std::shared_ptr<ConfigWatcher::State> state) {
  while (!state->stopped) {
    asio::awaitable<std::optional<std::size_t>> reading = content_hash(state->path);
    const std::optional<std::size_t> hash =
        co_await asio::co_spawn(state->worker, std::move(reading), asio::use_awaitable);
    if (state->stopped) co_return;
    if (hash && state->last_seen && *hash != *state->last_seen) {
      log::write(log::Level::kInfo, "config file changed: reloading", {{"file", state->path}});
      state->changed();
    }
    if (hash) state->last_seen = hash;
    state->timer.expires_after(state->interval);
    boost::system::error_code ec;
    co_await state->timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
}

}  // namespace

ConfigWatcher::ConfigWatcher(asio::any_io_executor probe_executor,
                             asio::any_io_executor worker_executor, std::string path,
                             std::chrono::milliseconds interval, std::function<void()> changed)
    : state_(std::make_shared<State>(
          State{probe_executor, std::move(worker_executor), std::move(path), interval,
                std::move(changed), asio::steady_timer(probe_executor), std::nullopt, false})) {}

ConfigWatcher::~ConfigWatcher() { stop(); }

void ConfigWatcher::start() {
  asio::co_spawn(state_->probe, watch(state_), [](std::exception_ptr error) {
    if (error) log::write(log::Level::kError, "internal error: the config watch stopped");
  });
}

void ConfigWatcher::stop() {
  state_->stopped = true;
  state_->timer.cancel();
}

}  // namespace smtp
