#include "exporter/config_reloader.h"

#include <chrono>
#include <exception>
#include <optional>

#include "exporter/log.h"

namespace smtp {
namespace {

/// One load and everyone waiting for it. The timer never fires: cancelling it wakes the
/// waiters (Asio 1.74 has no awaitable event).
struct Batch {
  explicit Batch(const asio::any_io_executor& executor) : done(executor) {
    done.expires_at(std::chrono::steady_clock::time_point::max());
  }
  asio::steady_timer done;
  ConfigReloader::Outcome outcome;
  bool finished = false;
};

struct Loaded {
  std::optional<Config> config;
  std::string error;
};

// Runs on the worker executor. Parameters by value: the coroutine frame owns them.
asio::awaitable<Loaded> load_config(ConfigReloader::Load load) {
  Loaded loaded;
  try {
    loaded.config = load();
  } catch (const std::exception& e) {
    loaded.error = e.what();
  }
  co_return loaded;
}

}  // namespace

struct ConfigReloader::State {
  asio::any_io_executor probe;
  asio::any_io_executor worker;
  Load load;
  Apply apply;
  Report report;
  std::shared_ptr<Batch> running;  // the load in progress, if any
  std::shared_ptr<Batch> next;     // the load that starts when it ends, if anyone asked
};

namespace {

asio::awaitable<void> run_loads(std::shared_ptr<ConfigReloader::State> state,
                                std::shared_ptr<Batch> batch) {
  for (;;) {
    // A named awaitable, not a temporary inside co_await (GCC 12 coroutine rules).
    asio::awaitable<Loaded> loading = load_config(state->load);
    Loaded loaded = co_await asio::co_spawn(state->worker, std::move(loading), asio::use_awaitable);
    ConfigReloader::Outcome outcome;
    if (loaded.config) {
      try {
        state->apply(std::move(*loaded.config));
        outcome.ok = true;
      } catch (const std::exception& e) {
        outcome.error = e.what();
      }
    } else {
      outcome.error = std::move(loaded.error);
    }
    state->report(outcome);
    batch->outcome = std::move(outcome);
    batch->finished = true;
    batch->done.cancel();
    if (!state->next) {
      state->running.reset();
      co_return;
    }
    batch = std::move(state->next);
    state->next.reset();
    state->running = batch;
  }
}

}  // namespace

ConfigReloader::ConfigReloader(asio::any_io_executor probe_executor,
                               asio::any_io_executor worker_executor, Load load, Apply apply,
                               Report report)
    : state_(std::make_shared<State>(State{std::move(probe_executor), std::move(worker_executor),
                                           std::move(load), std::move(apply), std::move(report),
                                           nullptr, nullptr})) {}

asio::awaitable<ConfigReloader::Outcome> ConfigReloader::reload() {
  std::shared_ptr<State> state = state_;
  std::shared_ptr<Batch> batch;
  if (!state->running) {
    batch = std::make_shared<Batch>(state->probe);
    state->running = batch;
    asio::co_spawn(state->probe, run_loads(state, batch), [state](std::exception_ptr error) {
      // Loads and applies catch their own exceptions; anything else is a bug, and nobody may be
      // left waiting for it.
      if (!error) return;
      log::write(log::Level::kError, "internal error in the config reload");
      for (std::shared_ptr<Batch>* waiting : {&state->running, &state->next}) {
        if (!*waiting) continue;
        (*waiting)->outcome = {false, "internal error"};
        (*waiting)->finished = true;
        (*waiting)->done.cancel();
        waiting->reset();
      }
    });
  } else {
    if (!state->next) state->next = std::make_shared<Batch>(state->probe);
    batch = state->next;
  }
  while (!batch->finished) {
    boost::system::error_code ec;
    co_await batch->done.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
  co_return batch->outcome;
}

}  // namespace smtp
