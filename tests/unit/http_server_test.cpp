#include "exporter/http_server.h"

#include <dlfcn.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <zlib.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <future>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "exporter/metrics_endpoint.h"

// A machine without IPv6, for the listener's fallback: while set, socket(AF_INET6, ...) fails
// as on a kernel built or booted without it. This definition takes the place of libc's for the
// whole test program; it forwards every other call.
namespace {
std::atomic<bool> g_refuse_ipv6{false};
}  // namespace

extern "C" int socket(int domain, int type, int protocol) {
  using Socket = int (*)(int, int, int);
  static const auto real = reinterpret_cast<Socket>(dlsym(RTLD_NEXT, "socket"));
  if (domain == AF_INET6 && g_refuse_ipv6.load()) {
    errno = EAFNOSUPPORT;
    return -1;
  }
  return real(domain, type, protocol);
}

namespace smtp {
namespace {

namespace http = beast::http;
using boost::system::error_code;
using testing::HasSubstr;
using namespace std::chrono_literals;

// Not a timing expectation: only so that a broken server fails a test instead of hanging it.
// Well under the server's default timeouts, so that a connection that only a timeout closes
// does not pass for one that the server closed on purpose.
constexpr auto kHangGuard = 10s;

// Large enough that no kernel buffers hold all of it (a socket's send buffer grows to 4 MiB on
// loopback): a client that does not read leaves the write unfinished.
constexpr std::size_t kPageBytes = std::size_t{8} << 20;

std::string to_string(beast::string_view s) { return std::string(s.data(), s.size()); }

std::string gunzip(std::string_view data) {
  z_stream zs{};
  if (inflateInit2(&zs, 15 + 16) != Z_OK) return "<inflateInit2 failed>";
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = static_cast<uInt>(data.size());
  std::string out;
  int rc = Z_OK;
  while (rc == Z_OK) {
    char chunk[16384];
    zs.next_out = reinterpret_cast<Bytef*>(chunk);
    zs.avail_out = sizeof chunk;
    rc = inflate(&zs, Z_NO_FLUSH);
    out.append(chunk, sizeof chunk - zs.avail_out);
  }
  const bool complete = rc == Z_STREAM_END && zs.avail_in == 0;
  inflateEnd(&zs);
  return complete ? out : "<inflate failed>";
}

// Polls `condition` until it holds or the hang guard runs out.
template <typename Condition>
bool eventually(Condition condition) {
  const auto deadline = std::chrono::steady_clock::now() + kHangGuard;
  while (!condition()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

// Counts what the server reports; read from the test's thread while the server runs.
class CountingObserver final : public HttpObserver {
 public:
  void http_connections(std::size_t open) override { open_ = open; }
  void http_connection_rejected() override { ++rejected_; }
  void http_connection_evicted(HttpEviction why) override {
    ++evicted_[static_cast<std::size_t>(why)];
  }
  void http_connection_timed_out(HttpTimeout what) override {
    ++timed_out_[static_cast<std::size_t>(what)];
  }
  void http_pinned_bytes(std::size_t bytes) override { pinned_ = bytes; }

  std::size_t open() const { return open_; }
  int rejected() const { return rejected_; }
  int evicted(HttpEviction why) const { return evicted_[static_cast<std::size_t>(why)]; }
  int timed_out(HttpTimeout what) const { return timed_out_[static_cast<std::size_t>(what)]; }
  std::size_t pinned() const { return pinned_; }

 private:
  std::atomic<std::size_t> open_{0};
  std::atomic<int> rejected_{0};
  std::array<std::atomic<int>, 3> evicted_{};
  std::array<std::atomic<int>, 2> timed_out_{};
  std::atomic<std::size_t> pinned_{0};
};

// A blocking HTTP client on its own io_context, driven from the test's thread while the server
// runs on another.
class Client {
 public:
  explicit Client(const tcp::endpoint& endpoint) {
    connect_error_ = run([&](auto done) { stream_.async_connect(endpoint, done); });
  }

  error_code connect_error() const { return connect_error_; }

  error_code write_raw(const std::string& bytes) {
    return run([&](auto done) { asio::async_write(stream_, asio::buffer(bytes), done); });
  }

  error_code send(http::request<http::string_body>& request) {
    return run([&](auto done) { http::async_write(stream_, request, done); });
  }

  error_code receive(http::response<http::string_body>& response, bool head = false) {
    http::response_parser<http::string_body> parser;
    parser.body_limit(64 * 1024 * 1024);
    parser.skip(head);  // a response to HEAD announces a body it does not send
    const auto ec = run([&](auto done) { http::async_read(stream_, buffer_, parser, done); });
    response = parser.release();
    return ec;
  }

  // Sends `request` and reads the response to it.
  http::response<http::string_body> exchange(http::request<http::string_body> request) {
    http::response<http::string_body> response;
    const bool head = request.method() == http::verb::head;
    EXPECT_FALSE(send(request));
    EXPECT_FALSE(receive(response, head));
    return response;
  }

  // True when the server has closed the connection (end of stream or reset) and sent nothing
  // more.
  bool closed_by_server() {
    char byte;
    std::size_t got = 0;
    const auto ec = run([&](auto done) {
      stream_.async_read_some(asio::buffer(&byte, 1), [&got, done](error_code e, std::size_t n) {
        got = n;
        done(e, n);
      });
    });
    return buffer_.size() == 0 && got == 0 &&
           (ec == asio::error::eof || ec == asio::error::connection_reset);
  }

 private:
  template <typename Start>
  error_code run(Start start) {
    error_code result = asio::error::would_block;
    stream_.expires_after(kHangGuard);
    start([&result](error_code ec, auto&&...) { result = ec; });
    io_.restart();
    io_.run();
    return result;
  }

  asio::io_context io_;
  beast::tcp_stream stream_{io_};
  beast::flat_buffer buffer_;
  error_code connect_error_;
};

// How many bytes a full response with a body of `body_bytes` takes, once its head has arrived.
std::size_t full_response_size(const std::string& received, std::size_t body_bytes) {
  const auto end = received.find("\r\n\r\n");
  return end == std::string::npos ? SIZE_MAX : end + 4 + body_bytes;
}

// A plain blocking socket, for tests that hold many connections, or connections that do not
// read. The receive timeout only guards against a hang.
class RawConnection {
 public:
  // `receive_buffer`: if not 0, a small receive buffer, so that a peer that does not read
  // stops taking bytes soon.
  explicit RawConnection(const tcp::endpoint& endpoint, int receive_buffer = 0) {
    fd_ = ::socket(endpoint.protocol().family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
    timeval guard{};
    guard.tv_sec = std::chrono::seconds(kHangGuard).count();
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &guard, sizeof guard);
    if (receive_buffer != 0) {
      setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof receive_buffer);
    }
    connected_ = connect(fd_, endpoint.data(), endpoint.size()) == 0;
  }
  ~RawConnection() {
    if (fd_ >= 0) close(fd_);
  }
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;

  bool connected() const { return connected_; }

  bool send_raw(const std::string& bytes) {
    return connected_ && ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) ==
                             static_cast<ssize_t>(bytes.size());
  }

  // Sends a GET for /hello and reads until its body has arrived; false if the server closed
  // the connection instead.
  bool get_hello() {
    if (!send_raw("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")) return false;
    std::string received;
    char chunk[512];
    while (received.find("hello world\n") == std::string::npos) {
      const ssize_t n = recv(fd_, chunk, sizeof chunk, 0);
      if (n <= 0) return false;
      received.append(chunk, static_cast<std::size_t>(n));
    }
    return true;
  }

  // Reads until `marker` has arrived; false if the server closed the connection first.
  bool receive_until(std::string_view marker) {
    std::string received;
    char chunk[512];
    while (received.find(marker) == std::string::npos) {
      const ssize_t n = recv(fd_, chunk, sizeof chunk, 0);
      if (n <= 0) return false;
      received.append(chunk, static_cast<std::size_t>(n));
    }
    return true;
  }

  // Reads a whole response whose body has `body_bytes` bytes, or what came before the server
  // closed the connection.
  std::string read_response(std::size_t body_bytes) {
    std::string received;
    std::vector<char> chunk(1 << 16);
    while (received.size() < full_response_size(received, body_bytes)) {
      const ssize_t n = recv(fd_, chunk.data(), chunk.size(), 0);
      if (n <= 0) break;
      received.append(chunk.data(), static_cast<std::size_t>(n));
    }
    return received;
  }

  // Reads everything until the server closes the connection; true if it did (end of stream or
  // reset), false if it was still open when the hang guard ran out.
  bool closed_by_server(std::string* received = nullptr) {
    std::vector<char> chunk(1 << 16);
    for (;;) {
      const ssize_t n = recv(fd_, chunk.data(), chunk.size(), 0);
      if (n == 0) return true;
      if (n < 0) return errno == ECONNRESET;
      if (received != nullptr) received->append(chunk.data(), static_cast<std::size_t>(n));
    }
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
};

http::request<http::string_body> make_request(http::verb verb, std::string target,
                                              std::string body = {}) {
  http::request<http::string_body> request{verb, target, 11};
  request.set(http::field::host, "127.0.0.1");
  request.body() = std::move(body);
  request.prepare_payload();
  return request;
}

std::string big_text() {
  std::string text;
  for (int i = 0; i < 5000; ++i) {
    text += "smtp_probe_success{target=\"mx" + std::to_string(i) + "\"} 1\n";
  }
  return text;
}

class HttpServerTest : public testing::Test {
 protected:
  void SetUp() override {
    options_.observer = &observer_;
    server_ = std::make_unique<HttpServer>(io_.get_executor(), listen_address_, options_);
    server_->handle("/hello", {http::verb::get},
                    [](const HttpRequest&) -> asio::awaitable<HttpResponse> {
                      HttpResponse response;
                      response.body = "hello world\n";
                      response.headers["X-Extra"] = "yes";
                      co_return response;
                    });
    server_->handle("/echo", {http::verb::get, http::verb::post},
                    [this](const HttpRequest& request) -> asio::awaitable<HttpResponse> {
                      ++calls_;
                      std::string body =
                          "method=" + request.method + "\npath=" + request.path + "\n";
                      for (const auto& [key, value] : request.query) {
                        body += "q[" + key + "]=" + value + "\n";
                      }
                      body += std::string("gzip=") + (request.accepts_gzip ? "1" : "0") + "\n";
                      HttpResponse response;
                      response.body = std::move(body);
                      co_return response;
                    });
    server_->handle("/reload", {http::verb::post},
                    [this](const HttpRequest&) -> asio::awaitable<HttpResponse> {
                      ++calls_;
                      co_return HttpResponse{};
                    });
    server_->handle("/big", {http::verb::get},
                    [](const HttpRequest& request) -> asio::awaitable<HttpResponse> {
                      HttpResponse response;
                      response.body = big_text();
                      if (request.accepts_gzip) {
                        response.body = gzip_compress(big_text());
                        response.gzipped = true;
                      }
                      co_return response;
                    });
    // The same bytes to every client, as /metrics shares one rendered page.
    server_->handle("/shared", {http::verb::get},
                    [this](const HttpRequest&) -> asio::awaitable<HttpResponse> {
                      HttpResponse response;
                      response.body = shared_page_;
                      co_return response;
                    });
    // A page of its own for every request, as a new scrape generation would be.
    server_->handle("/page", {http::verb::get},
                    [](const HttpRequest&) -> asio::awaitable<HttpResponse> {
                      HttpResponse response;
                      response.body = std::string(kPageBytes, 'p');
                      co_return response;
                    });
    // Holds every request until the test opens the gate.
    server_->handle("/gate", {http::verb::get},
                    [this](const HttpRequest&) -> asio::awaitable<HttpResponse> {
                      ++waiting_at_gate_;
                      error_code ec;
                      co_await gate_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
                      HttpResponse response;
                      response.body = "through\n";
                      co_return response;
                    });
    server_->handle("/throws", {http::verb::get},
                    [](const HttpRequest&) -> asio::awaitable<HttpResponse> {
                      throw std::runtime_error("handler failed");
                      co_return HttpResponse{};
                    });
    server_->handle("/teapot", {http::verb::get},
                    [](const HttpRequest&) -> asio::awaitable<HttpResponse> {
                      HttpResponse response;
                      response.status = 418;
                      response.content_type = "application/json";
                      response.body = "{}";
                      co_return response;
                    });
    gate_.expires_at(std::chrono::steady_clock::time_point::max());
    server_->start();
    runner_ = std::async(std::launch::async, [this] { io_.run(); });
  }

  void TearDown() override {
    open_gate();
    if (server_) server_->stop();
    EXPECT_TRUE(run_returned()) << "io_context::run() did not return after stop()";
    server_.reset();
  }

  // Waits for the server's io_context::run() to return; stops it by force if it does not.
  bool run_returned() {
    if (runner_.wait_for(kHangGuard) == std::future_status::ready) return true;
    io_.stop();
    runner_.wait();
    return false;
  }

  void open_gate() {
    asio::post(io_, [this] { gate_.cancel(); });
  }

  tcp::endpoint endpoint() const { return server_->local_endpoint(); }

  asio::io_context io_;
  ListenAddress listen_address_{tcp::endpoint(asio::ip::make_address_v4("127.0.0.1"), 0)};
  HttpServerOptions options_;
  CountingObserver observer_;
  std::shared_ptr<const std::string> shared_page_ =
      std::make_shared<const std::string>(kPageBytes, 's');
  asio::steady_timer gate_{io_};
  std::atomic<int> waiting_at_gate_{0};
  std::unique_ptr<HttpServer> server_;
  std::future<void> runner_;
  std::atomic<int> calls_{0};
};

TEST_F(HttpServerTest, ListensOnAnEphemeralPort) {
  EXPECT_NE(endpoint().port(), 0);
  EXPECT_EQ(endpoint().address(), asio::ip::make_address("127.0.0.1"));
}

TEST_F(HttpServerTest, GetReturnsTheHandlersBody) {
  Client client(endpoint());
  ASSERT_FALSE(client.connect_error());
  const auto response = client.exchange(make_request(http::verb::get, "/hello"));
  EXPECT_EQ(response.result_int(), 200);
  EXPECT_EQ(response.body(), "hello world\n");
  EXPECT_EQ(to_string(response[http::field::content_type]), "text/plain; charset=utf-8");
  EXPECT_EQ(to_string(response[http::field::content_length]), "12");
  EXPECT_EQ(to_string(response["X-Extra"]), "yes");
  EXPECT_TRUE(response[http::field::content_encoding].empty());
}

TEST_F(HttpServerTest, StatusAndContentTypeComeFromTheHandler) {
  Client client(endpoint());
  const auto response = client.exchange(make_request(http::verb::get, "/teapot"));
  EXPECT_EQ(response.result_int(), 418);
  EXPECT_EQ(to_string(response[http::field::content_type]), "application/json");
  EXPECT_EQ(response.body(), "{}");
}

TEST_F(HttpServerTest, UnknownPathsAre404) {
  Client client(endpoint());
  for (const char* target : {"/nope", "/hello/", "/HELLO", "/"}) {
    const auto response = client.exchange(make_request(http::verb::get, target));
    EXPECT_EQ(response.result_int(), 404) << target;
    EXPECT_THAT(response.body(), HasSubstr("not found")) << target;
  }
}

TEST_F(HttpServerTest, QueryStringIsSplitOffAndDecoded) {
  Client client(endpoint());
  const auto response = client.exchange(make_request(
      http::verb::get,
      "/echo?target=127.0.0.1%3A25&module=smtp%5fbanner&x=a+b&x=last&empty=&flag&&bad=%zz%4"));
  EXPECT_EQ(response.result_int(), 200);
  EXPECT_EQ(response.body(),
            "method=GET\npath=/echo\n"
            "q[bad]=%zz%4\n"
            "q[empty]=\n"
            "q[flag]=\n"
            "q[module]=smtp_banner\n"
            "q[target]=127.0.0.1:25\n"
            "q[x]=last\n"
            "gzip=0\n");
}

TEST_F(HttpServerTest, HandlerSeesThePostMethod) {
  Client client(endpoint());
  const auto response = client.exchange(make_request(http::verb::post, "/echo", "payload"));
  EXPECT_EQ(response.result_int(), 200);
  EXPECT_THAT(response.body(), HasSubstr("method=POST\n"));
}

TEST_F(HttpServerTest, KeepAliveServesSeveralRequestsOnOneConnection) {
  Client client(endpoint());
  const auto first = client.exchange(make_request(http::verb::get, "/hello"));
  EXPECT_EQ(first.result_int(), 200);
  EXPECT_TRUE(first.keep_alive());
  const auto second = client.exchange(make_request(http::verb::get, "/echo?n=2"));
  EXPECT_EQ(second.result_int(), 200);
  EXPECT_THAT(second.body(), HasSubstr("q[n]=2\n"));
  EXPECT_EQ(calls_.load(), 1);
}

TEST_F(HttpServerTest, PipelinedRequestsAreAnsweredInOrder) {
  Client client(endpoint());
  ASSERT_FALSE(client.write_raw(
      "GET /echo?n=1 HTTP/1.1\r\nHost: x\r\n\r\nGET /echo?n=2 HTTP/1.1\r\nHost: x\r\n\r\n"));
  http::response<http::string_body> first;
  http::response<http::string_body> second;
  ASSERT_FALSE(client.receive(first));
  ASSERT_FALSE(client.receive(second));
  EXPECT_THAT(first.body(), HasSubstr("q[n]=1\n"));
  EXPECT_THAT(second.body(), HasSubstr("q[n]=2\n"));
}

TEST_F(HttpServerTest, ConnectionCloseIsHonoured) {
  Client client(endpoint());
  auto request = make_request(http::verb::get, "/hello");
  request.keep_alive(false);
  const auto response = client.exchange(std::move(request));
  EXPECT_EQ(response.result_int(), 200);
  EXPECT_FALSE(response.keep_alive());
  EXPECT_TRUE(client.closed_by_server());
}

TEST_F(HttpServerTest, Http10WithoutKeepAliveIsClosedAfterTheResponse) {
  Client client(endpoint());
  ASSERT_FALSE(client.write_raw("GET /hello HTTP/1.0\r\n\r\n"));
  http::response<http::string_body> response;
  ASSERT_FALSE(client.receive(response));
  EXPECT_EQ(response.version(), 10u);
  EXPECT_EQ(response.body(), "hello world\n");
  EXPECT_TRUE(client.closed_by_server());
}

TEST_F(HttpServerTest, GzippedResponseInflatesToTheOriginal) {
  Client client(endpoint());
  auto request = make_request(http::verb::get, "/big");
  request.set(http::field::accept_encoding, "deflate, gzip;q=0.8");
  const auto response = client.exchange(std::move(request));
  EXPECT_EQ(response.result_int(), 200);
  EXPECT_EQ(to_string(response[http::field::content_encoding]), "gzip");
  EXPECT_EQ(to_string(response[http::field::content_length]),
            std::to_string(response.body().size()));
  EXPECT_LT(response.body().size(), big_text().size());
  EXPECT_EQ(gunzip(response.body()), big_text());

  const auto plain = client.exchange(make_request(http::verb::get, "/big"));
  EXPECT_TRUE(plain[http::field::content_encoding].empty());
  EXPECT_EQ(plain.body(), big_text());
}

TEST_F(HttpServerTest, AcceptEncodingReachesTheHandler) {
  Client client(endpoint());
  const std::pair<const char*, bool> cases[] = {
      {"br;q=1.0, gzip;q=0.5", true},
      {"gzip;q=0, *", false},
  };
  for (const auto& [header, expected] : cases) {
    auto request = make_request(http::verb::get, "/echo");
    request.set(http::field::accept_encoding, header);
    const auto response = client.exchange(std::move(request));
    EXPECT_THAT(response.body(), HasSubstr(expected ? "gzip=1\n" : "gzip=0\n")) << header;
  }
}

TEST_F(HttpServerTest, HeadIsGetWithoutTheBody) {
  Client client(endpoint());
  const auto head = client.exchange(make_request(http::verb::head, "/hello"));
  EXPECT_EQ(head.result_int(), 200);
  EXPECT_EQ(to_string(head[http::field::content_length]), "12");
  EXPECT_EQ(head.body(), "");
  // No stray body bytes: the next response on the same connection parses cleanly.
  const auto echo = client.exchange(make_request(http::verb::head, "/echo"));
  EXPECT_EQ(echo.result_int(), 200);
  const auto get = client.exchange(make_request(http::verb::get, "/echo"));
  EXPECT_THAT(get.body(), HasSubstr("method=GET\n"));
  EXPECT_EQ(calls_.load(), 2);  // the handler saw the HEAD as a GET
}

TEST_F(HttpServerTest, HandlerExceptionBecomes500) {
  Client client(endpoint());
  const auto response = client.exchange(make_request(http::verb::get, "/throws"));
  EXPECT_EQ(response.result_int(), 500);
  // The connection survives a failed handler.
  EXPECT_EQ(client.exchange(make_request(http::verb::get, "/hello")).result_int(), 200);
}

TEST_F(HttpServerTest, TooLargeHeaderIsRefused) {
  Client client(endpoint());
  std::string request = "GET /echo HTTP/1.1\r\nHost: x\r\n";
  for (int i = 0; i < 70; ++i) {
    request += "X-Padding-" + std::to_string(i) + ": " + std::string(1024, 'a') + "\r\n";
  }
  request += "\r\n";
  ASSERT_FALSE(client.write_raw(request));
  http::response<http::string_body> response;
  const auto ec = client.receive(response);
  // The server answers 431 and closes; a reset (unread bytes at close) may beat the answer.
  if (!ec) {
    EXPECT_EQ(response.result_int(), 431);
    EXPECT_FALSE(response.keep_alive());
  } else {
    EXPECT_EQ(ec, asio::error::connection_reset) << ec.message();
  }
  EXPECT_TRUE(client.closed_by_server());
  EXPECT_EQ(calls_.load(), 0);
}

TEST_F(HttpServerTest, TooLargeBodyIsRefused) {
  Client client(endpoint());
  ASSERT_FALSE(
      client.write_raw("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n"));
  http::response<http::string_body> response;
  ASSERT_FALSE(client.receive(response));
  EXPECT_EQ(response.result_int(), 413);
  EXPECT_TRUE(client.closed_by_server());
  EXPECT_EQ(calls_.load(), 0);
}

TEST_F(HttpServerTest, MalformedRequestIs400) {
  Client client(endpoint());
  ASSERT_FALSE(client.write_raw("GET /echo HTTP/9.x\r\n\r\n"));
  http::response<http::string_body> response;
  ASSERT_FALSE(client.receive(response));
  EXPECT_EQ(response.result_int(), 400);
  EXPECT_TRUE(client.closed_by_server());
  EXPECT_EQ(calls_.load(), 0);
}

TEST_F(HttpServerTest, ExpectContinueIsAnswered) {
  Client client(endpoint());
  ASSERT_FALSE(client.write_raw(
      "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n"));
  http::response<http::string_body> interim;
  ASSERT_FALSE(client.receive(interim));
  EXPECT_EQ(interim.result_int(), 100);
  ASSERT_FALSE(client.write_raw("body"));
  http::response<http::string_body> response;
  ASSERT_FALSE(client.receive(response));
  EXPECT_EQ(response.result_int(), 200);
  EXPECT_THAT(response.body(), HasSubstr("method=POST\n"));
}

TEST_F(HttpServerTest, StopClosesIdleConnectionsAndLetsRunReturn) {
  Client served(endpoint());
  EXPECT_EQ(served.exchange(make_request(http::verb::get, "/hello")).result_int(), 200);
  Client silent(endpoint());  // connected, never sends a byte
  ASSERT_FALSE(silent.connect_error());

  server_->stop();
  EXPECT_TRUE(served.closed_by_server());
  EXPECT_TRUE(silent.closed_by_server());
  EXPECT_TRUE(run_returned());
  // And no one listens any more.
  Client late(endpoint());
  EXPECT_TRUE(late.connect_error() || late.closed_by_server());
}

TEST_F(HttpServerTest, ServerMayBeDestroyedRightAfterStop) {
  Client served(endpoint());
  EXPECT_EQ(served.exchange(make_request(http::verb::get, "/hello")).result_int(), 200);
  server_->stop();
  server_.reset();  // the coroutines may still be unwinding on the other thread
  EXPECT_TRUE(served.closed_by_server());
  EXPECT_TRUE(run_returned());
}

TEST(HttpServerStopTest, StopBeforeRunLetsRunReturn) {
  asio::io_context io;
  HttpServer server(io.get_executor(), tcp::endpoint(asio::ip::make_address_v4("127.0.0.1"), 0));
  server.handle("/", {http::verb::get}, [](const HttpRequest&) -> asio::awaitable<HttpResponse> {
    co_return HttpResponse{};
  });
  server.start();
  server.stop();
  io.run_for(kHangGuard);
  EXPECT_TRUE(io.stopped()) << "io_context::run() did not run out of work after stop()";
}

TEST_F(HttpServerTest, EachRouteAnswersOnlyItsMethodsAnd405NamesThem) {
  Client client(endpoint());
  struct Case {
    std::string method;
    std::string target;
    std::string allow;
  };
  const Case cases[] = {
      {"DELETE", "/hello", "GET, HEAD"},
      {"TRACE", "/hello", "GET, HEAD"},
      {"FOO", "/hello", "GET, HEAD"},
      {"POST", "/hello", "GET, HEAD"},
      {"PUT", "/reload", "POST"},
      {"GET", "/reload", "POST"},
      {"HEAD", "/reload", "POST"},
      {"PUT", "/echo", "GET, HEAD, POST"},
      {"OPTIONS", "/echo", "GET, HEAD, POST"},
  };
  for (const Case& c : cases) {
    ASSERT_FALSE(client.write_raw(c.method + " " + c.target + " HTTP/1.1\r\nHost: x\r\n\r\n"));
    http::response<http::string_body> response;
    ASSERT_FALSE(client.receive(response, c.method == "HEAD")) << c.method << " " << c.target;
    EXPECT_EQ(response.result_int(), 405) << c.method << " " << c.target;
    EXPECT_EQ(to_string(response[http::field::allow]), c.allow) << c.method << " " << c.target;
    EXPECT_TRUE(response.keep_alive());
  }
  EXPECT_EQ(calls_.load(), 0);
  // The methods a route takes still pass, on the same connection.
  EXPECT_EQ(client.exchange(make_request(http::verb::post, "/reload")).result_int(), 200);
  EXPECT_EQ(client.exchange(make_request(http::verb::head, "/hello")).result_int(), 200);
  EXPECT_EQ(client.exchange(make_request(http::verb::post, "/echo")).result_int(), 200);
  EXPECT_EQ(calls_.load(), 2);
  // An unknown path stays 404 whatever the method.
  EXPECT_EQ(client.exchange(make_request(http::verb::delete_, "/nope")).result_int(), 404);
}

TEST_F(HttpServerTest, OneSharedBodyIsWrittenToManyConnectionsWithoutACopy) {
  constexpr long kReaders = 4;
  std::vector<std::unique_ptr<RawConnection>> readers;
  for (long i = 0; i < kReaders; ++i) {
    readers.push_back(std::make_unique<RawConnection>(endpoint(), 4096));
    ASSERT_TRUE(readers.back()->send_raw("GET /shared HTTP/1.1\r\nHost: x\r\n\r\n"));
  }
  // Nobody reads yet: every write is unfinished and holds the page itself, not a copy of it.
  EXPECT_TRUE(eventually([&] { return shared_page_.use_count() == 1 + kReaders; }))
      << shared_page_.use_count();
  EXPECT_TRUE(eventually([&] { return observer_.pinned() == kPageBytes; })) << observer_.pinned();
  for (const auto& reader : readers) {
    const std::string received = reader->read_response(kPageBytes);
    ASSERT_EQ(received.size(), full_response_size(received, kPageBytes));
    EXPECT_EQ(received.substr(received.size() - kPageBytes), *shared_page_);
  }
  EXPECT_TRUE(eventually([&] { return shared_page_.use_count() == 1; }));
  EXPECT_TRUE(eventually([&] { return observer_.pinned() == 0; }));
}

class HttpServerCapTest : public HttpServerTest {
 protected:
  HttpServerCapTest() { options_.max_connections = 3; }
};

TEST_F(HttpServerCapTest, AtTheCapTheConnectionWaitingLongestIsEvicted) {
  RawConnection a(endpoint());
  RawConnection b(endpoint());
  RawConnection c(endpoint());
  ASSERT_TRUE(a.connected() && b.connected() && c.connected());
  ASSERT_TRUE(eventually([&] { return observer_.open() == 3; }));

  RawConnection d(endpoint());
  EXPECT_TRUE(d.get_hello());
  EXPECT_TRUE(a.closed_by_server());
  EXPECT_TRUE(eventually([&] { return observer_.evicted(HttpEviction::kIdle) == 1; }));
  // b was not disturbed; once served, it waits again at the end of the line: after c and d.
  EXPECT_TRUE(b.get_hello());
  RawConnection e(endpoint());
  EXPECT_TRUE(e.get_hello());
  EXPECT_TRUE(c.closed_by_server());
  EXPECT_TRUE(eventually([&] { return observer_.evicted(HttpEviction::kIdle) == 2; }));
  EXPECT_TRUE(b.get_hello());
  EXPECT_TRUE(d.get_hello());
  EXPECT_EQ(observer_.rejected(), 0);
  EXPECT_TRUE(eventually([&] { return observer_.open() == 3; }));
}

TEST_F(HttpServerCapTest, AtTheCapWithEveryConnectionBusyANewOneIsRejected) {
  std::vector<std::unique_ptr<RawConnection>> busy;
  for (int i = 0; i < 3; ++i) {
    busy.push_back(std::make_unique<RawConnection>(endpoint()));
    ASSERT_TRUE(busy.back()->send_raw("GET /gate HTTP/1.1\r\nHost: x\r\n\r\n"));
  }
  ASSERT_TRUE(eventually([&] { return waiting_at_gate_ == 3; }));
  RawConnection late(endpoint());
  EXPECT_TRUE(late.closed_by_server());
  EXPECT_TRUE(eventually([&] { return observer_.rejected() == 1; }));
  EXPECT_EQ(observer_.evicted(HttpEviction::kIdle), 0);
  open_gate();
  for (const auto& connection : busy) EXPECT_TRUE(connection->receive_until("through\n"));
}

class HttpServerTimeoutTest : public HttpServerTest {
 protected:
  HttpServerTimeoutTest() {
    options_.request_timeout = 100ms;
    options_.write_stall_timeout = 100ms;
    options_.send_buffer_bytes = 64 * 1024;
  }
};

TEST_F(HttpServerTimeoutTest, ARequestNotCompleteInTimeIsClosed) {
  RawConnection silent(endpoint());
  RawConnection slowloris(endpoint());
  ASSERT_TRUE(slowloris.send_raw("GET /hello HTTP/1.1\r\nHost: x\r\n"));  // no end of header
  EXPECT_TRUE(silent.closed_by_server());
  EXPECT_TRUE(slowloris.closed_by_server());
  EXPECT_TRUE(eventually([&] { return observer_.timed_out(HttpTimeout::kRequest) == 2; }));
  EXPECT_TRUE(eventually([&] { return observer_.open() == 0; }));
}

TEST_F(HttpServerTimeoutTest, AReaderThatTakesNoBytesIsDropped) {
  RawConnection reader(endpoint(), 4096);
  ASSERT_TRUE(reader.send_raw("GET /page HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_TRUE(eventually([&] { return observer_.timed_out(HttpTimeout::kResponse) == 1; }));
  std::string received;
  EXPECT_TRUE(reader.closed_by_server(&received));
  EXPECT_LT(received.size(), full_response_size(received, kPageBytes));
  // What the kernel queued for it is bounded by the send buffer (doubled by Linux) and the
  // reader's own receive buffer; with autotuning it would have been megabytes.
  EXPECT_LT(received.size(), 512u * 1024);
  EXPECT_TRUE(eventually([&] { return observer_.pinned() == 0; }));
}

class HttpServerPinTest : public HttpServerTest {
 protected:
  HttpServerPinTest() { options_.max_pinned_bytes = kPageBytes + kPageBytes / 2; }
};

TEST_F(HttpServerPinTest, PastThePinnedBytesBoundTheEarliestWriterIsClosed) {
  RawConnection slow(endpoint(), 4096);
  ASSERT_TRUE(slow.send_raw("GET /page HTTP/1.1\r\nHost: x\r\n\r\n"));
  ASSERT_TRUE(eventually([&] { return observer_.pinned() == kPageBytes; }));
  // A second page would pin two: the first writer goes, the new one is served in full.
  RawConnection fast(endpoint());
  ASSERT_TRUE(fast.send_raw("GET /page HTTP/1.1\r\nHost: x\r\n\r\n"));
  const std::string full = fast.read_response(kPageBytes);
  ASSERT_EQ(full.size(), full_response_size(full, kPageBytes));
  EXPECT_EQ(full.substr(full.size() - kPageBytes), std::string(kPageBytes, 'p'));
  EXPECT_TRUE(eventually([&] { return observer_.evicted(HttpEviction::kSlowReader) == 1; }));
  std::string partial;
  EXPECT_TRUE(slow.closed_by_server(&partial));
  EXPECT_LT(partial.size(), full_response_size(partial, kPageBytes));
}

// True if this machine can bind [::1] (IPv6 loopback configured).
bool has_ipv6_loopback() {
  asio::io_context io;
  tcp::acceptor probe(io);
  error_code ec;
  probe.open(tcp::v6(), ec);
  if (!ec) probe.bind(tcp::endpoint(asio::ip::make_address("::1"), 0), ec);
  return !ec;
}

class HttpServerDualStackTest : public HttpServerTest {
 protected:
  HttpServerDualStackTest() { listen_address_ = parse_listen_address(":0"); }
};

TEST_F(HttpServerDualStackTest, AnEmptyHostListensOnIpv6AndIpv4) {
  if (!has_ipv6_loopback()) GTEST_SKIP() << "no IPv6 loopback (::1) on this machine";
  EXPECT_EQ(endpoint().address(), asio::ip::make_address("::"));
  RawConnection v4(tcp::endpoint(asio::ip::make_address("127.0.0.1"), endpoint().port()));
  EXPECT_TRUE(v4.get_hello());
  RawConnection v6(tcp::endpoint(asio::ip::make_address("::1"), endpoint().port()));
  EXPECT_TRUE(v6.get_hello());

  // 0.0.0.0 keeps its meaning: IPv4 alone.
  HttpServer v4_only(io_.get_executor(), parse_listen_address("0.0.0.0:0"));
  RawConnection refused(
      tcp::endpoint(asio::ip::make_address("::1"), v4_only.local_endpoint().port()));
  EXPECT_FALSE(refused.connected());
}

class HttpServerWithoutIpv6Test : public HttpServerTest {
 protected:
  HttpServerWithoutIpv6Test() {
    g_refuse_ipv6 = true;
    listen_address_ = parse_listen_address(":0");
  }
  ~HttpServerWithoutIpv6Test() override { g_refuse_ipv6 = false; }
};

TEST_F(HttpServerWithoutIpv6Test, AnEmptyHostFallsBackToIpv4) {
  EXPECT_EQ(endpoint().address(), asio::ip::make_address("0.0.0.0"));
  RawConnection v4(tcp::endpoint(asio::ip::make_address("127.0.0.1"), endpoint().port()));
  EXPECT_TRUE(v4.get_hello());
  // An explicit [::] has no fallback: it was asked for by name.
  EXPECT_THROW(HttpServer(io_.get_executor(), parse_listen_address("[::]:0")),
               boost::system::system_error);
}

}  // namespace
}  // namespace smtp
