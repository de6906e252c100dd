#include "exporter/http_server.h"

#include <zlib.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <limits>
#include <optional>
#include <stdexcept>
#include <unordered_map>
#include <utility>

#include "probes/text.h"

namespace smtp {
namespace {

namespace http = beast::http;
using boost::system::error_code;

constexpr std::uint32_t kHeaderLimit = 64 * 1024;
constexpr std::uint64_t kBodyLimit = 1024 * 1024;
// A connection that sends no complete request for this long is closed; it also bounds how long
// a slow client may take to send one.
constexpr std::chrono::seconds kReadTimeout{30};
// Writing a large /metrics page to a slow scraper may take a while, but not forever.
constexpr std::chrono::seconds kWriteTimeout{60};
// Over this many open connections, new ones are closed at once: a flood of idle connections
// must not exhaust the descriptors the probes need.
constexpr std::size_t kMaxConnections = 512;
// After a failed accept (EMFILE, ...), wait a little instead of spinning on the error.
constexpr std::chrono::milliseconds kAcceptBackoff{100};

// Beast 1.74 hands out boost::string_view.
std::string_view to_std(beast::string_view s) { return {s.data(), s.size()}; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Form-style decoding: '+' is a space, %XX a byte; a malformed escape stays as it was, since
// rejecting the whole request over it would help nobody.
std::string percent_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (c == '+') {
      out.push_back(' ');
    } else if (c == '%' && i + 2 < s.size() && hex_value(s[i + 1]) >= 0 &&
               hex_value(s[i + 2]) >= 0) {
      out.push_back(static_cast<char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2])));
      i += 2;
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::map<std::string, std::string> parse_query(std::string_view query) {
  std::map<std::string, std::string> result;
  while (!query.empty()) {
    const auto amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    if (pair.empty()) continue;
    const auto eq = pair.find('=');
    std::string key = percent_decode(pair.substr(0, eq));
    std::string value =
        eq == std::string_view::npos ? std::string{} : percent_decode(pair.substr(eq + 1));
    result.insert_or_assign(std::move(key), std::move(value));
  }
  return result;
}

// RFC 9110 §12.5.3: a coding is acceptable unless its weight is 0; "*" stands for every
// coding not named; an explicit "gzip" (or its alias "x-gzip") wins over "*".
bool parse_accepts_gzip(std::string_view header) {
  std::optional<bool> gzip;
  std::optional<bool> any;
  while (!header.empty()) {
    const auto comma = header.find(',');
    std::string_view element = header.substr(0, comma);
    header = comma == std::string_view::npos ? std::string_view{} : header.substr(comma + 1);
    const auto semi = element.find(';');
    const std::string_view coding = trim(element.substr(0, semi));
    double weight = 1.0;
    bool valid = true;
    std::string_view params =
        semi == std::string_view::npos ? std::string_view{} : element.substr(semi + 1);
    while (!params.empty()) {
      const auto next = params.find(';');
      const std::string_view param = trim(params.substr(0, next));
      params = next == std::string_view::npos ? std::string_view{} : params.substr(next + 1);
      if (param.size() >= 2 && ascii_lower(param[0]) == 'q' && param[1] == '=') {
        const std::string_view number = trim(param.substr(2));
        const auto [ptr, ec] = std::from_chars(number.data(), number.data() + number.size(), weight,
                                               std::chars_format::fixed);
        if (ec != std::errc{} || ptr != number.data() + number.size()) valid = false;
      }
    }
    if (!valid) continue;
    if (iequals(coding, "gzip") || iequals(coding, "x-gzip")) {
      gzip = weight > 0;
    } else if (coding == "*") {
      any = weight > 0;
    }
  }
  return gzip.value_or(any.value_or(false));
}

HttpResponse text_response(int status, std::string body) {
  HttpResponse response;
  response.status = status;
  response.body = std::move(body);
  return response;
}

}  // namespace

// Everything the coroutines touch lives here, shared by the HttpServer and every coroutine, so
// the server object may go away while they are still unwinding after stop().
//
// Not locked: it is only touched on the executor, which must not run two handlers at once (one
// thread, or a strand). stop() hops onto the executor for that reason.
struct HttpServer::State {
  State(asio::any_io_executor ex, const tcp::endpoint& endpoint)
      : executor(std::move(ex)), acceptor(executor), backoff(executor) {
    acceptor.open(endpoint.protocol());
    acceptor.set_option(tcp::acceptor::reuse_address(true));
    if (endpoint.protocol() == tcp::v6()) {
      // As Go's exporters do: "[::]:port" takes IPv4 connections too, whatever the sysctl
      // net.ipv6.bindv6only says.
      acceptor.set_option(asio::ip::v6_only(false));
    }
    acceptor.bind(endpoint);
    acceptor.listen(asio::socket_base::max_listen_connections);
  }

  void shutdown() {
    if (stopped) return;
    stopped = true;
    error_code ignored;
    acceptor.close(ignored);
    backoff.cancel();
    for (auto& [id, weak] : connections) {
      if (auto stream = weak.lock()) stream->close();
    }
  }

  static asio::awaitable<void> accept_loop(std::shared_ptr<State> self);
  static asio::awaitable<void> serve(std::shared_ptr<State> self,
                                     std::shared_ptr<beast::tcp_stream> stream, std::uint64_t id);

  asio::any_io_executor executor;
  tcp::acceptor acceptor;
  asio::steady_timer backoff;
  std::map<std::string, HttpHandler> handlers;
  std::unordered_map<std::uint64_t, std::weak_ptr<beast::tcp_stream>> connections;
  std::uint64_t next_id = 0;
  bool started = false;
  bool stopped = false;
};

namespace {

constexpr auto kAwait = asio::use_awaitable;

// The status to answer a request that could not be read with, or 0 when there is nobody left
// to answer (the peer closed, the read timed out, the server is stopping).
int status_for_read_error(const error_code& ec) {
  if (ec == http::error::header_limit) return 431;
  if (ec == http::error::body_limit) return 413;
  if (ec == http::error::end_of_stream || ec == http::error::partial_message) return 0;
  if (ec.category() == http::make_error_code(http::error::bad_method).category()) return 400;
  return 0;
}

asio::awaitable<void> write_response(beast::tcp_stream& stream, HttpResponse response,
                                     unsigned version, bool head, bool keep_alive, error_code& ec) {
  http::response<http::string_body> message;
  message.version(version);
  message.result(response.status >= 100 && response.status <= 999
                     ? static_cast<unsigned>(response.status)
                     : 500u);
  if (!response.content_type.empty()) {
    message.set(http::field::content_type, response.content_type);
  }
  if (response.gzipped) {
    message.set(http::field::content_encoding, "gzip");
    message.set(http::field::vary, "Accept-Encoding");
  }
  for (const auto& [name, value] : response.headers) message.set(name, value);
  // Set last so that no extra header can contradict the framing.
  message.keep_alive(keep_alive);
  message.content_length(response.body.size());
  if (!head) message.body() = std::move(response.body);
  stream.expires_after(kWriteTimeout);
  co_await http::async_write(stream, message, asio::redirect_error(kAwait, ec));
}

HttpRequest make_request(const http::request<http::string_body>& message) {
  HttpRequest request;
  // HEAD is GET without the body: handlers see GET, and the server leaves the body out.
  request.method = message.method() == http::verb::head
                       ? std::string("GET")
                       : std::string(to_std(message.method_string()));
  const std::string_view target = to_std(message.target());
  const auto question = target.find('?');
  request.path = std::string(target.substr(0, question));
  if (question != std::string_view::npos) request.query = parse_query(target.substr(question + 1));
  std::string accept_encoding;
  for (auto [it, end] = message.equal_range(http::field::accept_encoding); it != end; ++it) {
    accept_encoding.append(to_std(it->value())).push_back(',');
  }
  request.accepts_gzip = parse_accepts_gzip(accept_encoding);
  for (const auto& field : message) {
    std::string& value = request.headers[ascii_lowered(to_std(field.name_string()))];
    if (!value.empty()) value += ", ";
    value += to_std(field.value());
  }
  return request;
}

bool expects_continue(const http::request<http::string_body>& message) {
  return message.version() >= 11 &&
         iequals(trim(to_std(message[http::field::expect])), "100-continue");
}

}  // namespace

asio::awaitable<void> HttpServer::State::accept_loop(std::shared_ptr<State> self) {
  while (!self->stopped) {
    error_code ec;
    tcp::socket socket = co_await self->acceptor.async_accept(asio::redirect_error(kAwait, ec));
    if (self->stopped) break;
    if (ec) {
      self->backoff.expires_after(kAcceptBackoff);
      co_await self->backoff.async_wait(asio::redirect_error(kAwait, ec));
      continue;
    }
    if (self->connections.size() >= kMaxConnections) {
      socket.close(ec);
      continue;
    }
    const std::uint64_t id = self->next_id++;
    auto stream = std::make_shared<beast::tcp_stream>(std::move(socket));
    self->connections.emplace(id, stream);
    asio::co_spawn(self->executor, serve(self, std::move(stream), id), asio::detached);
  }
}

asio::awaitable<void> HttpServer::State::serve(std::shared_ptr<State> self,
                                               std::shared_ptr<beast::tcp_stream> stream,
                                               std::uint64_t id) {
  // Locals die before parameters, so `self` is still alive when this runs.
  struct Unregister {
    State& state;
    std::uint64_t id;
    ~Unregister() { state.connections.erase(id); }
  } unregister{*self, id};

  beast::flat_buffer buffer;
  bool keep_alive = true;
  while (keep_alive && !self->stopped) {
    http::request_parser<http::string_body> parser;
    parser.header_limit(kHeaderLimit);
    parser.body_limit(kBodyLimit);
    error_code ec;
    stream->expires_after(kReadTimeout);
    co_await http::async_read_header(*stream, buffer, parser, asio::redirect_error(kAwait, ec));
    if (!ec && expects_continue(parser.get())) {
      http::response<http::empty_body> go_on{http::status::continue_, parser.get().version()};
      stream->expires_after(kWriteTimeout);
      co_await http::async_write(*stream, go_on, asio::redirect_error(kAwait, ec));
      stream->expires_after(kReadTimeout);
    }
    if (!ec && !parser.is_done()) {
      co_await http::async_read(*stream, buffer, parser, asio::redirect_error(kAwait, ec));
    }
    if (ec) {
      const int status = status_for_read_error(ec);
      if (status != 0 && !self->stopped) {
        // The rest of the stream cannot be trusted to be framed right: answer and close.
        co_await write_response(*stream, text_response(status, "bad request\n"), 11, false, false,
                                ec);
      }
      break;
    }

    const auto& message = parser.get();
    const HttpRequest request = make_request(message);
    HttpResponse response;
    if (const auto it = self->handlers.find(request.path); it != self->handlers.end()) {
      // A copy, so that the handler outlives its own coroutine even if handle() replaces it.
      const HttpHandler handler = it->second;
      try {
        response = co_await handler(request);
      } catch (...) {
        response = text_response(500, "internal server error\n");
      }
    } else {
      response = text_response(404, "not found\n");
    }
    keep_alive = message.keep_alive() && !self->stopped;
    co_await write_response(*stream, std::move(response), message.version(),
                            message.method() == http::verb::head, keep_alive, ec);
    if (ec) break;
  }
  error_code ignored;
  stream->socket().shutdown(tcp::socket::shutdown_send, ignored);
  stream->close();
}

HttpServer::HttpServer(asio::any_io_executor executor, const tcp::endpoint& endpoint)
    : state_(std::make_shared<State>(std::move(executor), endpoint)) {}

HttpServer::~HttpServer() { stop(); }

void HttpServer::handle(std::string path, HttpHandler handler) {
  state_->handlers.insert_or_assign(std::move(path), std::move(handler));
}

void HttpServer::start() {
  if (state_->started) return;
  state_->started = true;
  asio::co_spawn(state_->executor, State::accept_loop(state_), asio::detached);
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

tcp::endpoint parse_listen_address(std::string_view text) {
  const auto fail = [text](std::string_view why) {
    return std::invalid_argument("invalid listen address \"" + std::string(text) +
                                 "\": " + std::string(why));
  };
  std::string_view host;
  std::string_view port_text;
  bool bracketed = false;
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string_view::npos) throw fail("missing ']' after the IPv6 address");
    host = text.substr(1, close - 1);
    if (close + 1 >= text.size() || text[close + 1] != ':') {
      throw fail("expected \"[address]:port\"");
    }
    port_text = text.substr(close + 2);
    bracketed = true;
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos) throw fail("expected \"host:port\"");
    host = text.substr(0, colon);
    port_text = text.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) {
      throw fail("an IPv6 address needs brackets, as in \"[::1]:9101\"");
    }
  }

  unsigned port = 0;
  const auto [ptr, ec] =
      std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (port_text.empty() || ec != std::errc{} || ptr != port_text.data() + port_text.size() ||
      port > 65535) {
    throw fail("the port must be a number from 0 to 65535");
  }

  asio::ip::address address;
  if (host.empty()) {
    if (bracketed) throw fail("empty IPv6 address");
    address = asio::ip::address_v4::any();
  } else if (!bracketed && iequals(host, "localhost")) {
    address = asio::ip::address_v4::loopback();
  } else {
    error_code parse_error;
    if (bracketed) {
      address = asio::ip::make_address_v6(std::string(host), parse_error);
    } else {
      address = asio::ip::make_address_v4(std::string(host), parse_error);
    }
    if (parse_error) {
      throw fail(bracketed ? "not an IPv6 address"
                           : "not an IP address (host names other than localhost are not "
                             "resolved)");
    }
  }
  return tcp::endpoint(address, static_cast<unsigned short>(port));
}

std::string gzip_compress(std::string_view data) {
  z_stream zs{};
  // The fastest level: /metrics text is so repetitive that it still shrinks ~20x, at a quarter
  // of the default level's CPU (10,000 targets: 19 MB in ~0.12 s instead of ~0.5 s).
  if (deflateInit2(&zs, Z_BEST_SPEED, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    throw std::runtime_error("gzip_compress: deflateInit2 failed");
  }
  struct End {
    z_stream& zs;
    ~End() { deflateEnd(&zs); }
  } end{zs};

  // zlib counts in uInt: feed inputs and outputs larger than that in slices.
  constexpr std::size_t kSlice = std::numeric_limits<uInt>::max();
  std::string out(deflateBound(&zs, data.size()), '\0');
  const char* in = data.data();
  std::size_t in_left = data.size();
  std::size_t out_used = 0;
  for (;;) {
    if (out_used == out.size()) out.resize(out.size() * 2 + 64);
    const auto in_slice = static_cast<uInt>(std::min(in_left, kSlice));
    const auto out_slice = static_cast<uInt>(std::min(out.size() - out_used, kSlice));
    zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in));
    zs.avail_in = in_slice;
    zs.next_out = reinterpret_cast<Bytef*>(out.data() + out_used);
    zs.avail_out = out_slice;
    const int rc = deflate(&zs, in_slice == in_left ? Z_FINISH : Z_NO_FLUSH);
    if (rc == Z_STREAM_ERROR) throw std::runtime_error("gzip_compress: deflate failed");
    in += in_slice - zs.avail_in;
    in_left -= in_slice - zs.avail_in;
    out_used += out_slice - zs.avail_out;
    if (rc == Z_STREAM_END) break;
  }
  out.resize(out_used);
  return out;
}

}  // namespace smtp
