#include "exporter/http_server.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <exception>
#include <optional>
#include <type_traits>
#include <unordered_map>
#include <utility>

#include "exporter/http_connections.h"
#include "exporter/log.h"

namespace smtp {

namespace {

namespace http = beast::http;
using boost::system::error_code;
using Clock = std::chrono::steady_clock;
using Id = ConnectionTable::Id;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;

constexpr auto kAwait = asio::use_awaitable;
constexpr std::uint32_t kHeaderLimit = 64 * 1024;
constexpr std::uint64_t kBodyLimit = 1024 * 1024;
// The first read of a request: a whole GET fits.
constexpr std::size_t kFirstReadBytes = 4096;
// After a failed accept (EMFILE, ...), wait a little: the connection stays queued, so accepting
// again at once would fail again at once, in a loop.
constexpr std::chrono::milliseconds kAcceptBackoff{100};

std::string_view eviction_name(HttpEviction why) {
  switch (why) {
    case HttpEviction::kIdle:
      return "idle";
    case HttpEviction::kIncompleteRequest:
      return "incomplete_request";
    case HttpEviction::kSlowReader:
      return "slow_reader";
  }
  return "unknown";
}

class NullObserver final : public HttpObserver {
 public:
  void http_connections(std::size_t) override {}
  void http_connection_rejected() override {}
  void http_connection_evicted(HttpEviction) override {}
  void http_connection_timed_out(HttpTimeout) override {}
  void http_pinned_bytes(std::size_t) override {}
};

struct Route {
  std::vector<http::verb> methods;
  std::string allow;  // the Allow header of a 405
  HttpHandler handler;

  bool allows(http::verb verb) const {
    const http::verb wanted = verb == http::verb::head ? http::verb::get : verb;
    return std::find(methods.begin(), methods.end(), wanted) != methods.end();
  }
};

// True when binding [::] failed because the machine has no IPv6 (a kernel without it, or an
// address family switched off), not because of the port.
bool ipv6_missing(const error_code& ec) {
  return ec == asio::error::address_family_not_supported ||
         ec == boost::system::errc::address_not_available ||
         ec == boost::system::errc::protocol_not_supported;
}

void listen_on(tcp::acceptor& acceptor, const tcp::endpoint& endpoint, error_code& ec) {
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec && endpoint.protocol() == tcp::v6()) {
    // As Go's exporters do: "[::]:port" takes IPv4 connections too, whatever the sysctl
    // net.ipv6.bindv6only says.
    acceptor.set_option(asio::ip::v6_only(false), ec);
  }
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    error_code ignored;
    acceptor.close(ignored);
  }
}

// The status to answer a request that could not be read with, or 0 when there is nobody left
// to answer (the peer closed, the read timed out, the server is stopping).
int status_for_read_error(const error_code& ec) {
  if (ec == http::error::header_limit) return 431;
  if (ec == http::error::body_limit) return 413;
  if (ec == http::error::end_of_stream || ec == http::error::partial_message) return 0;
  if (ec.category() == http::make_error_code(http::error::bad_method).category()) return 400;
  return 0;
}

}  // namespace

// Everything the coroutines touch lives here, shared by the HttpServer and every coroutine, so
// the server object may go away while they are still unwinding after stop().
//
// Not locked: it is only touched on the executor, which must not run two handlers at once (one
// thread, or a strand). stop() hops onto the executor for that reason.
struct HttpServer::State {
  State(asio::any_io_executor ex, const ListenAddress& address, HttpServerOptions opts)
      : executor(std::move(ex)),
        acceptor(executor),
        backoff(executor),
        options(opts),
        observer_at(opts.observer != nullptr ? opts.observer : &null_observer),
        table(opts.max_pinned_bytes) {
    error_code ec;
    listen_on(acceptor, address.endpoint, ec);
    if (ec && address.both_families && ipv6_missing(ec)) {
      listen_on(acceptor, tcp::endpoint(asio::ip::address_v4::any(), address.endpoint.port()), ec);
    }
    if (ec) throw boost::system::system_error(ec, "listen");
  }

  void shutdown() {
    if (stopped) return;
    stopped = true;
    error_code ignored;
    acceptor.close(ignored);
    backoff.cancel();
    for (auto& [id, weak] : streams) {
      if (auto stream = weak.lock()) stream->close();
    }
  }

  // Closes a connection the table has already let go of; its coroutine unwinds by itself.
  void close_connection(Id id) {
    if (const auto it = streams.find(id); it != streams.end()) {
      if (auto stream = it->second.lock()) stream->close();
      streams.erase(it);
    }
    observer().http_connections(table.size());
  }

  // At the cap: evicts the connection that has waited longest for a request, if any.
  bool make_room() {
    const auto eviction = table.evict_idlest();
    if (!eviction) return false;
    observer().http_connection_evicted(eviction->why);
    close_connection(eviction->id);
    const std::string cap = std::to_string(options.max_connections);
    log_limiter.write("http_evicted", log::Level::kWarn,
                      "HTTP connection evicted to make room for a new one",
                      {{"reason", eviction_name(eviction->why)}, {"max_connections", cap}});
    return true;
  }

  void reject(tcp::socket& socket) {
    observer().http_connection_rejected();
    error_code ignored;
    socket.close(ignored);
    const std::string cap = std::to_string(options.max_connections);
    log_limiter.write("http_rejected", log::Level::kWarn,
                      "HTTP connection rejected: every connection is busy with a request",
                      {{"max_connections", cap}});
  }

  // The connection's coroutine is done with it.
  void forget(Id id) {
    table.remove(id);
    streams.erase(id);
    observer().http_connections(table.size());
    observer().http_pinned_bytes(table.pinned_bytes());
  }

  static asio::awaitable<void> accept_loop(std::shared_ptr<State> self);
  static void admit(const std::shared_ptr<State>& self, tcp::socket socket);
  // Stream: beast::tcp_stream, or TlsStream over one.
  template <typename Stream>
  static asio::awaitable<void> serve(std::shared_ptr<State> self, std::shared_ptr<Stream> stream,
                                     Id id, Clock::time_point first_deadline);
  static asio::awaitable<bool> handshake(State& state, TlsStream& stream);
  asio::awaitable<HttpResponse> respond(const http::request<http::string_body>& message);
  template <typename Stream>
  asio::awaitable<void> write_response(Id id, Stream& stream, HttpResponse response,
                                       unsigned version, bool head, bool keep_alive,
                                       error_code& ec);

  static void log_exception(std::exception_ptr error) {
    if (!error) return;
    try {
      std::rethrow_exception(error);
    } catch (const std::exception& e) {
      log::write(log::Level::kError, "HTTP server coroutine failed", {{"err", e.what()}});
    } catch (...) {
      log::write(log::Level::kError, "HTTP server coroutine failed");
    }
  }

  // The owner's observer until the HttpServer object goes: coroutines that unwind later (when
  // their io_context is destroyed, say) must not call an observer that is gone by then.
  HttpObserver& observer() { return *observer_at.load(std::memory_order_acquire); }
  void forget_observer() { observer_at.store(&null_observer, std::memory_order_release); }

  inline static NullObserver null_observer;

  asio::any_io_executor executor;
  tcp::acceptor acceptor;
  asio::steady_timer backoff;
  const HttpServerOptions options;
  std::atomic<HttpObserver*> observer_at;
  ConnectionTable table;
  std::unordered_map<Id, std::weak_ptr<beast::tcp_stream>> streams;
  std::map<std::string, Route> routes;
  log::RateLimiter log_limiter;
  bool started = false;
  bool stopped = false;
};

asio::awaitable<void> HttpServer::State::accept_loop(std::shared_ptr<State> self) {
  while (!self->stopped) {
    error_code ec;
    tcp::socket socket = co_await self->acceptor.async_accept(asio::redirect_error(kAwait, ec));
    if (self->stopped) break;
    if (ec) {
      self->log_limiter.write("http_accept_failed", log::Level::kWarn,
                              "cannot accept HTTP connections", {{"err", ec.message()}});
      self->backoff.expires_after(kAcceptBackoff);
      co_await self->backoff.async_wait(asio::redirect_error(kAwait, ec));
      continue;
    }
    admit(self, std::move(socket));
  }
}

void HttpServer::State::admit(const std::shared_ptr<State>& self, tcp::socket socket) {
  // The descriptor budget counts this one socket in hand beyond the cap, for this moment.
  if (self->table.size() >= self->options.max_connections && !self->make_room()) {
    self->reject(socket);
    return;
  }
  if (self->options.send_buffer_bytes != 0) {
    error_code ignored;  // the kernel's default is a worse bound, not a reason to refuse
    socket.set_option(
        asio::socket_base::send_buffer_size(static_cast<int>(self->options.send_buffer_bytes)),
        ignored);
  }
  const Id id = self->table.add();
  // The first request, TLS handshake included, is due within request_timeout of the accept.
  const Clock::time_point first_deadline = Clock::now() + self->options.request_timeout;
  WebAccess* access = self->options.access;
  if (access != nullptr && access->tls()) {
    const std::shared_ptr<asio::ssl::context> context = access->tls_context();
    auto stream = std::make_shared<TlsStream>(std::move(socket), *context);
    // The server keeps the TCP stream to close it; the coroutine owns the whole.
    self->streams.emplace(id, std::shared_ptr<beast::tcp_stream>(stream, &stream->next_layer()));
    self->observer().http_connections(self->table.size());
    asio::co_spawn(self->executor, serve(self, std::move(stream), id, first_deadline),
                   log_exception);
    return;
  }
  auto stream = std::make_shared<beast::tcp_stream>(std::move(socket));
  self->streams.emplace(id, stream);
  self->observer().http_connections(self->table.size());
  asio::co_spawn(self->executor, serve(self, std::move(stream), id, first_deadline), log_exception);
}

asio::awaitable<bool> HttpServer::State::handshake(State& state, TlsStream& stream) {
  error_code ec;
  co_await stream.async_handshake(asio::ssl::stream_base::server, asio::redirect_error(kAwait, ec));
  if (!ec) co_return true;
  if (ec == beast::error::timeout) {
    state.observer().http_connection_timed_out(HttpTimeout::kRequest);
  }
  // Plain HTTP to the TLS port, a client that trusts not our certificate, a missing client
  // certificate: the client's business, told to it by the alert; a debug line for the operator.
  log::write(log::Level::kDebug, "TLS handshake failed", {{"err", ec.message()}});
  co_return false;
}

template <typename Stream>
asio::awaitable<void> HttpServer::State::serve(std::shared_ptr<State> self,
                                               std::shared_ptr<Stream> stream, Id id,
                                               Clock::time_point first_deadline) {
  // Locals die before parameters, so `self` is still alive when this runs.
  struct Forget {
    State& state;
    Id id;
    ~Forget() { state.forget(id); }
  } forget{*self, id};

  const HttpServerOptions& options = self->options;
  beast::tcp_stream& lowest = beast::get_lowest_layer(*stream);
  if constexpr (std::is_same_v<Stream, TlsStream>) {
    lowest.expires_at(first_deadline);
    const bool secured = co_await handshake(*self, *stream);
    if (!secured) {
      lowest.close();
      co_return;
    }
  }
  beast::flat_buffer buffer;
  bool served = false;  // a request was answered: the connection now waits as a keep-alive one
  bool keep_alive = true;
  while (keep_alive && !self->stopped) {
    error_code ec;
    // A new connection's request is due within request_timeout of its accept; a later one's
    // within request_timeout of its first byte.
    auto deadline = served ? Clock::now() + options.request_timeout : first_deadline;
    if (buffer.size() == 0) {
      if (served) {
        lowest.expires_after(options.idle_timeout);
      } else {
        lowest.expires_at(first_deadline);
      }
      const std::size_t n = co_await stream->async_read_some(buffer.prepare(kFirstReadBytes),
                                                             asio::redirect_error(kAwait, ec));
      buffer.commit(n);
      if (ec) {
        // An idle keep-alive connection that times out is not news; a silent new one is.
        if (ec == beast::error::timeout && !served) {
          self->observer().http_connection_timed_out(HttpTimeout::kRequest);
        }
        break;
      }
      if (served) deadline = Clock::now() + options.request_timeout;
    }
    self->table.request_begun(id);
    lowest.expires_at(deadline);

    http::request_parser<http::string_body> parser;
    parser.header_limit(kHeaderLimit);
    parser.body_limit(kBodyLimit);
    co_await http::async_read_header(*stream, buffer, parser, asio::redirect_error(kAwait, ec));
    if (!ec && expects_continue(parser.get())) {
      http::response<http::empty_body> go_on{http::status::continue_, parser.get().version()};
      lowest.expires_after(options.write_stall_timeout);
      co_await http::async_write(*stream, go_on, asio::redirect_error(kAwait, ec));
      lowest.expires_at(deadline);
    }
    if (!ec && !parser.is_done()) {
      co_await http::async_read(*stream, buffer, parser, asio::redirect_error(kAwait, ec));
    }
    if (ec) {
      if (ec == beast::error::timeout) {
        self->observer().http_connection_timed_out(HttpTimeout::kRequest);
      }
      const int status = status_for_read_error(ec);
      if (status != 0 && !self->stopped) {
        // The rest of the stream cannot be trusted to be framed right: answer and close.
        HttpResponse refusal = text_response(status, "bad request\n");
        co_await self->write_response(id, *stream, std::move(refusal), 11, false, false, ec);
      }
      break;
    }

    self->table.handle_request(id);
    const auto& message = parser.get();
    HttpResponse response = co_await self->respond(message);
    keep_alive = message.keep_alive() && !self->stopped;
    co_await self->write_response(id, *stream, std::move(response), message.version(),
                                  message.method() == http::verb::head, keep_alive, ec);
    if (ec) {
      if (ec == beast::error::timeout) {
        self->observer().http_connection_timed_out(HttpTimeout::kResponse);
      }
      break;
    }
    served = true;
    self->table.wait_for_request(id);
  }
  // No TLS close_notify: it would wait on the peer; the response's framing says where it ends.
  error_code ignored;
  lowest.socket().shutdown(tcp::socket::shutdown_send, ignored);
  lowest.close();
}

asio::awaitable<HttpResponse> HttpServer::State::respond(
    const http::request<http::string_body>& message) {
  const HttpRequest request = make_request(message);
  if (options.access != nullptr) {
    std::optional<HttpResponse> refusal = co_await options.access->check(request);
    if (refusal) co_return std::move(*refusal);
  }
  const auto it = routes.find(request.path);
  if (it == routes.end()) co_return text_response(404, "not found\n");
  if (!it->second.allows(message.method())) {
    HttpResponse response = text_response(405, "method not allowed\n");
    response.headers["Allow"] = it->second.allow;
    co_return response;
  }
  // A copy, so that the handler outlives its own coroutine even if handle() replaces it.
  const HttpHandler handler = it->second.handler;
  HttpResponse response;
  try {
    response = co_await handler(request);
  } catch (const std::exception& e) {
    log::write(log::Level::kError, "HTTP handler failed",
               {{"path", request.path}, {"err", e.what()}});
    response = text_response(500, "internal server error\n");
  } catch (...) {
    response = text_response(500, "internal server error\n");
  }
  co_return response;
}

template <typename Stream>
asio::awaitable<void> HttpServer::State::write_response(Id id, Stream& stream,
                                                        HttpResponse response, unsigned version,
                                                        bool head, bool keep_alive,
                                                        error_code& ec) {
  ec = {};  // an error response follows a failed read
  if (options.access != nullptr) options.access->add_headers(response);
  const std::string header = response_header(response, version, keep_alive);
  // The body is written from the shared buffer itself: no copy per connection.
  const std::string_view body = head ? std::string_view() : response.body.view();
  for (const Id victim : table.start_write(id, body.data(), body.size())) {
    observer().http_connection_evicted(HttpEviction::kSlowReader);
    close_connection(victim);
    const std::string limit = std::to_string(options.max_pinned_bytes);
    log_limiter.write("http_slow_reader", log::Level::kWarn,
                      "HTTP response abandoned: unfinished responses held too many bytes",
                      {{"max_pinned_bytes", limit}});
  }
  observer().http_pinned_bytes(table.pinned_bytes());

  const std::size_t total = header.size() + body.size();
  std::size_t written = 0;
  while (written < total && !ec) {
    std::array<asio::const_buffer, 2> rest;
    if (written < header.size()) {
      rest = {asio::buffer(header) + written, asio::buffer(body.data(), body.size())};
    } else {
      rest = {asio::buffer(body.data(), body.size()) + (written - header.size()),
              asio::const_buffer()};
    }
    // The timeout is on progress: a reader that takes a byte now and then keeps its connection.
    beast::get_lowest_layer(stream).expires_after(options.write_stall_timeout);
    written += co_await stream.async_write_some(rest, asio::redirect_error(kAwait, ec));
  }
  table.end_write(id);
  observer().http_pinned_bytes(table.pinned_bytes());
}

HttpServer::HttpServer(asio::any_io_executor executor, const ListenAddress& address,
                       HttpServerOptions options)
    : state_(std::make_shared<State>(std::move(executor), address, options)) {}

HttpServer::~HttpServer() {
  state_->forget_observer();
  stop();
}

void HttpServer::handle(std::string path, HttpMethods methods, HttpHandler handler) {
  Route route{std::vector<http::verb>(methods), {}, std::move(handler)};
  for (const http::verb verb : route.methods) {
    if (!route.allow.empty()) route.allow += ", ";
    const beast::string_view name = http::to_string(verb);
    route.allow.append(name.data(), name.size());
    if (verb == http::verb::get) route.allow += ", HEAD";
  }
  state_->routes.insert_or_assign(std::move(path), std::move(route));
}

void HttpServer::start() {
  if (state_->started) return;
  state_->started = true;
  asio::co_spawn(state_->executor, State::accept_loop(state_), State::log_exception);
}

void HttpServer::stop() {
  // May be called from any thread (a signal handler's, a test's): the state is only touched on
  // the executor.
  asio::dispatch(state_->executor, [state = state_] { state->shutdown(); });
}

tcp::endpoint HttpServer::local_endpoint() const {
  error_code ec;
  auto endpoint = state_->acceptor.local_endpoint(ec);
  return ec ? tcp::endpoint{} : endpoint;
}

}  // namespace smtp
