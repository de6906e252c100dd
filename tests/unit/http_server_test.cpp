#include "exporter/http_server.h"

#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <zlib.h>

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace smtp {
namespace {

namespace http = beast::http;
using boost::system::error_code;
using testing::HasSubstr;
using namespace std::chrono_literals;

// Not a timing expectation: only so that a broken server fails a test instead of hanging it.
// Well under the server's 30 s idle timeout, so that a connection that only that timeout closes
// does not pass for one that stop() closed.
constexpr auto kHangGuard = 10s;

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

// A plain blocking socket, for tests that need more connections than an io_context per client
// allows. The receive timeout only guards against a hang.
class RawConnection {
 public:
  explicit RawConnection(const tcp::endpoint& endpoint) {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    timeval guard{};
    guard.tv_sec = std::chrono::seconds(kHangGuard).count();
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &guard, sizeof guard);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(endpoint.port());
    address.sin_addr.s_addr = htonl(endpoint.address().to_v4().to_uint());
    connected_ = connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
  }
  ~RawConnection() {
    if (fd_ >= 0) close(fd_);
  }
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;

  // Sends a GET for /hello and reads until its body has arrived; false if the server closed
  // the connection instead.
  bool get_hello() {
    if (!connected_) return false;
    const std::string request = "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n";
    if (send(fd_, request.data(), request.size(), MSG_NOSIGNAL) !=
        static_cast<ssize_t>(request.size())) {
      return false;
    }
    std::string received;
    char chunk[512];
    while (received.find("hello world\n") == std::string::npos) {
      const ssize_t n = recv(fd_, chunk, sizeof chunk, 0);
      if (n <= 0) return false;
      received.append(chunk, static_cast<std::size_t>(n));
    }
    return true;
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
    server_ = std::make_unique<HttpServer>(
        io_.get_executor(), tcp::endpoint(asio::ip::make_address_v4("127.0.0.1"), 0));
    server_->handle("/hello", [](const HttpRequest&) -> asio::awaitable<HttpResponse> {
      HttpResponse response;
      response.body = "hello world\n";
      response.headers["X-Extra"] = "yes";
      co_return response;
    });
    server_->handle("/echo", [this](const HttpRequest& request) -> asio::awaitable<HttpResponse> {
      ++calls_;
      HttpResponse response;
      response.body = "method=" + request.method + "\npath=" + request.path + "\n";
      for (const auto& [key, value] : request.query) {
        response.body += "q[" + key + "]=" + value + "\n";
      }
      response.body += std::string("gzip=") + (request.accepts_gzip ? "1" : "0") + "\n";
      co_return response;
    });
    server_->handle("/big", [](const HttpRequest& request) -> asio::awaitable<HttpResponse> {
      HttpResponse response;
      response.body = big_text();
      if (request.accepts_gzip) {
        response.body = gzip_compress(response.body);
        response.gzipped = true;
      }
      co_return response;
    });
    server_->handle("/throws", [](const HttpRequest&) -> asio::awaitable<HttpResponse> {
      throw std::runtime_error("handler failed");
      co_return HttpResponse{};
    });
    server_->handle("/teapot", [](const HttpRequest&) -> asio::awaitable<HttpResponse> {
      HttpResponse response;
      response.status = 418;
      response.content_type = "application/json";
      response.body = "{}";
      co_return response;
    });
    server_->start();
    runner_ = std::async(std::launch::async, [this] { io_.run(); });
  }

  void TearDown() override {
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

  tcp::endpoint endpoint() const { return server_->local_endpoint(); }

  asio::io_context io_;
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

TEST_F(HttpServerTest, AcceptEncodingIsParsedForGzip) {
  Client client(endpoint());
  const std::pair<const char*, bool> cases[] = {
      {"gzip", true},
      {"GZip", true},
      {"deflate, br", false},
      {"br;q=1.0, gzip;q=0.5", true},
      {"gzip;q=0", false},
      {"gzip; q=0.000", false},
      {"*", true},
      {"*;q=0", false},
      {"gzip;q=0, *", false},
      {"identity", false},
      {"x-gzip", true},
      {"", false},
      {"gzipper", false},
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

TEST_F(HttpServerTest, ConnectionsOverTheCapAreClosedAtOnce) {
  constexpr std::size_t kCap = 512;  // the server's limit
  // Both ends of every connection live in this process.
  rlimit limit{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &limit), 0);
  constexpr rlim_t kNeeded = 2 * kCap + 200;
  if (limit.rlim_cur < kNeeded && limit.rlim_max >= kNeeded) {
    limit.rlim_cur = kNeeded;
    ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &limit), 0);
  }
  if (limit.rlim_cur < kNeeded) GTEST_SKIP() << "needs " << kNeeded << " file descriptors";

  std::vector<std::unique_ptr<RawConnection>> open;
  for (std::size_t i = 0; i < kCap; ++i) {
    open.push_back(std::make_unique<RawConnection>(endpoint()));
    ASSERT_TRUE(open.back()->get_hello()) << "connection " << i;
  }
  RawConnection over(endpoint());
  EXPECT_FALSE(over.get_hello());

  // A freed place is taken again, once the server has seen the close.
  open.pop_back();
  const auto deadline = std::chrono::steady_clock::now() + kHangGuard;
  bool served = false;
  while (!served && std::chrono::steady_clock::now() < deadline) {
    served = RawConnection(endpoint()).get_hello();
    if (!served) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_TRUE(served);
  // The ones under the cap were never disturbed.
  EXPECT_TRUE(open.front()->get_hello());
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
  server.handle(
      "/", [](const HttpRequest&) -> asio::awaitable<HttpResponse> { co_return HttpResponse{}; });
  server.start();
  server.stop();
  io.run_for(kHangGuard);
  EXPECT_TRUE(io.stopped()) << "io_context::run() did not run out of work after stop()";
}

TEST(ParseListenAddressTest, AcceptsTheUsualForms) {
  const auto v4 = parse_listen_address("127.0.0.1:9101");
  EXPECT_EQ(v4.address(), asio::ip::make_address("127.0.0.1"));
  EXPECT_EQ(v4.port(), 9101);

  const auto v6 = parse_listen_address("[::1]:9102");
  EXPECT_EQ(v6.address(), asio::ip::make_address("::1"));
  EXPECT_EQ(v6.port(), 9102);

  const auto any = parse_listen_address(":9103");
  EXPECT_EQ(any.address(), asio::ip::make_address("0.0.0.0"));
  EXPECT_EQ(any.port(), 9103);

  EXPECT_EQ(parse_listen_address("localhost:80").address(), asio::ip::make_address("127.0.0.1"));
  EXPECT_EQ(parse_listen_address("LocalHost:80").address(), asio::ip::make_address("127.0.0.1"));
  EXPECT_EQ(parse_listen_address("0.0.0.0:0").port(), 0);
  EXPECT_EQ(parse_listen_address("[::]:65535").address(), asio::ip::make_address("::"));
  EXPECT_EQ(parse_listen_address("[::]:65535").port(), 65535);
}

TEST(ParseListenAddressTest, RejectsInvalidAddressesWithAClearMessage) {
  for (const char* text :
       {"", "9101", "example.com:80", "::1:80", "[::1]", "[::1]80", "[::1:80",
        "127.0.0.1:", "127.0.0.1:65536", "127.0.0.1:-1", "127.0.0.1:80x", "127.0.0.1: 80",
        "[127.0.0.1]:80", "[]:80", "1.2.3:80", "localhost:http"}) {
    try {
      parse_listen_address(text);
      ADD_FAILURE() << "accepted \"" << text << "\"";
    } catch (const std::invalid_argument& error) {
      EXPECT_THAT(error.what(), HasSubstr("invalid listen address \"" + std::string(text) + "\""));
    }
  }
  try {
    parse_listen_address("example.com:80");
  } catch (const std::invalid_argument& error) {
    EXPECT_THAT(error.what(), HasSubstr("not resolved"));
  }
}

TEST(GzipTest, RoundTrips) {
  std::string binary;
  for (std::size_t i = 0; i < 300000; ++i) binary.push_back(static_cast<char>(i * 7919 % 251));
  for (const std::string& original : {std::string(), std::string("a"), big_text(), binary}) {
    const std::string compressed = gzip_compress(original);
    ASSERT_GE(compressed.size(), 18u);  // gzip header and trailer
    EXPECT_EQ(static_cast<unsigned char>(compressed[0]), 0x1f);
    EXPECT_EQ(static_cast<unsigned char>(compressed[1]), 0x8b);
    EXPECT_EQ(gunzip(compressed), original);
  }
  EXPECT_LT(gzip_compress(big_text()).size(), big_text().size() / 5);
}

}  // namespace
}  // namespace smtp
