#include "probes/resolve.h"

#include <memory>

namespace smtp {

asio::awaitable<ResolveResult> resolve_host(const std::string& host, std::uint16_t port,
                                            std::chrono::steady_clock::time_point deadline) {
  auto executor = co_await asio::this_coro::executor;
  ResolveResult result;
  boost::system::error_code ec;
  asio::ip::address literal = asio::ip::make_address(host, ec);
  if (!ec) {
    result.endpoints.emplace_back(literal, port);
    co_return result;
  }

  // The lookup and the deadline race; whichever ends first cancels the other. The state is
  // shared because the lookup's handler may run after this coroutine has returned.
  struct Race {
    explicit Race(asio::any_io_executor ex) : resolver(ex), timer(ex) {}
    tcp::resolver resolver;
    asio::steady_timer timer;
    bool resolved = false;
    ResolveResult result;
  };
  auto race = std::make_shared<Race>(executor);
  race->timer.expires_at(deadline);
  race->resolver.async_resolve(
      host, std::to_string(port),
      [race](const boost::system::error_code& error, tcp::resolver::results_type results) {
        if (error == asio::error::operation_aborted && !race->resolved) return;
        race->resolved = true;
        race->result.error = error;
        for (const auto& entry : results) race->result.endpoints.push_back(entry.endpoint());
        race->timer.cancel();
      });
  boost::system::error_code timer_ec;
  co_await race->timer.async_wait(asio::redirect_error(asio::use_awaitable, timer_ec));
  if (!race->resolved) {
    race->resolver.cancel();
    result.timed_out = true;
    co_return result;
  }
  co_return std::move(race->result);
}

}  // namespace smtp
