// The HTTP server with --web.config.file: TLS, client certificates, basic auth, headers, and
// the file read again when it changes.
#include "exporter/web_access.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>

#include "exporter/config.h"
#include "exporter/http_server.h"
#include "tests/support/test_certs.h"

namespace smtp {
namespace {

namespace http = beast::http;
using boost::system::error_code;
using namespace std::chrono_literals;

// Not a timing expectation: only so that a broken server fails a test instead of hanging it.
constexpr auto kHangGuard = 10s;

// "user" / "pass" and "user" / "word", cost 4 (python3 crypt): cheap for a test.
constexpr std::string_view kPassHash =
    "$2b$04$agZfvK6teEnbnMJ9eF3R.e66dKaiTbZ4BRADqT4fJQ6fOWsYJykeC";
constexpr std::string_view kWordHash =
    "$2b$04$5N4GZLjkEbESKDCUvEqdiuuPFKVL7/dp1Jb.BBGMkFuDPDr8yGf0y";

class CountingObserver final : public HttpObserver {
 public:
  void http_connections(std::size_t) override {}
  void http_connection_rejected() override {}
  void http_connection_evicted(HttpEviction) override {}
  void http_connection_timed_out(HttpTimeout what) override {
    if (what == HttpTimeout::kRequest) ++request_timeouts;
  }
  void http_pinned_bytes(std::size_t) override {}
  std::atomic<int> request_timeouts{0};
};

// Writes `text` to `path` in one step (a new file renamed over the old), as editors and
// Kubernetes do.
void write_file(const std::string& path, const std::string& text) {
  const std::string next = path + ".next";
  std::ofstream(next) << text;
  ASSERT_EQ(std::rename(next.c_str(), path.c_str()), 0);
}

struct Answer {
  error_code error;  // of the connection, the handshake or the exchange
  int status = 0;
  http::response<http::string_body> response;
};

// A server with a web config on its own thread; blocking clients from the test's thread.
class WebAccessTest : public ::testing::Test {
 protected:
  WebAccessTest() : server_leaf_(ca_.issue({.ip_addresses = {"127.0.0.1"}})) {}

  ~WebAccessTest() override {
    if (server_) server_->stop();
    if (thread_.joinable()) {
      work_.reset();
      thread_.join();
    }
    server_.reset();
    if (access_) access_->join();
  }

  std::string path() const { return ca_.dir() + "/web.yml"; }

  std::string tls_block(const std::string& extra = "") const {
    return "tls_server_config:\n  cert_file: " + server_leaf_.cert_file +
           "\n  key_file: " + server_leaf_.key_file + "\n" + extra;
  }
  static std::string users(std::string_view hash) {
    return "basic_auth_users:\n  user: " + std::string(hash) + "\n";
  }

  void start(const std::string& web_config, HttpServerOptions options = {}) {
    write_file(path(), web_config);
    // The files are checked at every request: the test need not wait for a second to pass.
    access_ = std::make_unique<WebAccess>(path(), 0ms);
    options.access = access_.get();
    options.observer = &observer_;
    server_ = std::make_unique<HttpServer>(io_.get_executor(), parse_listen_address("127.0.0.1:0"),
                                           options);
    for (const char* route : {"/metrics", "/-/healthy"}) {
      server_->handle(route, {http::verb::get},
                      [](const HttpRequest&) -> asio::awaitable<HttpResponse> {
                        co_return text_response(200, "ok\n");
                      });
    }
    server_->start();
    endpoint_ = server_->local_endpoint();
    thread_ = std::thread([this] { io_.run(); });
  }

  // One GET over TLS; `authorization` empty: no header; `client`: a client certificate.
  Answer get(const std::string& target, const std::string& authorization = "",
             const testing::Leaf* client = nullptr) {
    asio::io_context io;
    asio::ssl::context context(asio::ssl::context::tls_client);
    context.load_verify_file(ca_.ca_file());
    context.set_verify_mode(asio::ssl::verify_peer);
    if (client != nullptr) {
      context.use_certificate_chain_file(client->cert_file);
      context.use_private_key_file(client->key_file, asio::ssl::context::pem);
    }
    beast::ssl_stream<beast::tcp_stream> stream(io, context);
    Answer answer;
    beast::get_lowest_layer(stream).expires_after(kHangGuard);
    beast::get_lowest_layer(stream).connect(endpoint_, answer.error);
    if (!answer.error) stream.handshake(asio::ssl::stream_base::client, answer.error);
    http::request<http::string_body> request{http::verb::get, target, 11};
    request.set(http::field::host, "127.0.0.1");
    if (!authorization.empty()) request.set(http::field::authorization, authorization);
    if (!answer.error) http::write(stream, request, answer.error);
    beast::flat_buffer buffer;
    if (!answer.error) http::read(stream, buffer, answer.response, answer.error);
    if (!answer.error) answer.status = static_cast<int>(answer.response.result_int());
    return answer;
  }

  testing::TestCa ca_;
  testing::Leaf server_leaf_;
  CountingObserver observer_;
  asio::io_context io_{1};
  asio::executor_work_guard<asio::io_context::executor_type> work_{io_.get_executor()};
  std::unique_ptr<WebAccess> access_;
  std::unique_ptr<HttpServer> server_;
  tcp::endpoint endpoint_;
  std::thread thread_;
};

constexpr std::string_view kUserPass = "Basic dXNlcjpwYXNz";       // user:pass
constexpr std::string_view kUserWord = "Basic dXNlcjp3b3Jk";       // user:word
constexpr std::string_view kOtherPass = "Basic b3RoZXI6cGFzcw==";  // other:pass

TEST_F(WebAccessTest, BasicAuthOverTls) {
  start(tls_block() + users(kPassHash) +
        "http_server_config:\n  headers:\n    X-Frame-Options: deny\n");

  const Answer missing = get("/metrics");
  ASSERT_FALSE(missing.error) << missing.error.message();
  EXPECT_EQ(missing.status, 401);
  EXPECT_EQ(missing.response[http::field::www_authenticate], "Basic realm=\"smtp_exporter\"");
  EXPECT_EQ(missing.response["X-Frame-Options"], "deny");

  EXPECT_EQ(get("/metrics", std::string(kUserWord)).status, 401);   // wrong password
  EXPECT_EQ(get("/metrics", std::string(kOtherPass)).status, 401);  // unknown user
  EXPECT_EQ(get("/metrics", "Bearer abc").status, 401);
  EXPECT_EQ(get("/nowhere").status, 401);  // before routing: nothing is learnt without auth

  const Answer right = get("/metrics", std::string(kUserPass));
  EXPECT_EQ(right.status, 200);
  EXPECT_EQ(right.response.body(), "ok\n");
  EXPECT_EQ(right.response["X-Frame-Options"], "deny");
  EXPECT_EQ(get("/nowhere", std::string(kUserPass)).status, 404);

  const Answer healthy = get("/-/healthy");
  EXPECT_EQ(healthy.status, 200);
  EXPECT_EQ(healthy.response["X-Frame-Options"], "deny");
}

TEST_F(WebAccessTest, OutcomesAreCached) {
  start(users(kPassHash));  // basic auth without TLS
  const auto plain_get = [this](const std::string& authorization) {
    asio::io_context client_io;
    beast::tcp_stream stream(client_io);
    stream.expires_after(kHangGuard);
    stream.connect(endpoint_);
    http::request<http::string_body> request{http::verb::get, "/metrics", 11};
    request.set(http::field::authorization, authorization);
    http::write(stream, request);
    beast::flat_buffer buffer;
    http::response<http::string_body> response;
    http::read(stream, buffer, response);
    return static_cast<int>(response.result_int());
  };
  EXPECT_EQ(plain_get(std::string(kUserPass)), 200);
  EXPECT_EQ(access_->bcrypt_checks(), 1u);
  EXPECT_EQ(plain_get(std::string(kUserPass)), 200);
  EXPECT_EQ(plain_get(std::string(kUserWord)), 401);
  EXPECT_EQ(access_->bcrypt_checks(), 2u);
  EXPECT_EQ(plain_get(std::string(kUserWord)), 401);
  EXPECT_EQ(plain_get(std::string(kUserPass)), 200);
  EXPECT_EQ(access_->bcrypt_checks(), 2u);
}

TEST_F(WebAccessTest, ANewFileIsReadAndABadOneKeepsTheLastGood) {
  start(tls_block() + users(kPassHash));
  EXPECT_EQ(get("/metrics", std::string(kUserPass)).status, 200);

  write_file(path(), tls_block() + users(kWordHash));
  EXPECT_EQ(get("/metrics", std::string(kUserWord)).status, 200);
  EXPECT_EQ(get("/metrics", std::string(kUserPass)).status, 401);

  write_file(path(), tls_block() + "basic_auth_users:\n  user: not-a-hash\n");
  EXPECT_EQ(get("/metrics", std::string(kUserWord)).status, 200);
  // Turning TLS off while running is refused the same way.
  write_file(path(), users(kPassHash));
  EXPECT_EQ(get("/metrics", std::string(kUserWord)).status, 200);
}

TEST_F(WebAccessTest, ClientCertificateRequiredAndVerified) {
  start(tls_block("  client_ca_file: " + ca_.ca_file() +
                  "\n  client_auth_type: RequireAndVerifyClientCert\n"));
  const Answer without = get("/metrics");
  EXPECT_TRUE(without.error);  // the handshake, or with TLS 1.3 the first read, fails
  EXPECT_EQ(without.status, 0);

  const testing::Leaf client = ca_.issue({.common_name = "scraper", .dns_names = {"scraper"}});
  EXPECT_EQ(get("/metrics", "", &client).status, 200);

  testing::TestCa stranger_ca;
  const testing::Leaf stranger = stranger_ca.issue();
  EXPECT_TRUE(get("/metrics", "", &stranger).error);
}

TEST_F(WebAccessTest, PlainHttpToTheTlsPortIsClosedAndTheServerGoesOn) {
  start(tls_block());
  asio::io_context io;
  beast::tcp_stream stream(io);
  stream.expires_after(kHangGuard);
  stream.connect(endpoint_);
  http::request<http::string_body> request{http::verb::get, "/metrics", 11};
  http::write(stream, request);
  beast::flat_buffer buffer;
  http::response<http::string_body> response;
  error_code ec;
  http::read(stream, buffer, response, ec);
  EXPECT_TRUE(ec);  // no HTTP answer, only a TLS alert and the close
  EXPECT_NE(ec, beast::error::timeout);
  EXPECT_EQ(get("/metrics").status, 200);
}

TEST_F(WebAccessTest, SilentClientIsClosedByTheRequestTimeout) {
  start(tls_block(), {.request_timeout = 200ms});
  asio::io_context io;
  beast::tcp_stream stream(io);
  stream.expires_after(kHangGuard);
  stream.connect(endpoint_);
  char byte;
  error_code ec;
  stream.read_some(asio::buffer(&byte, 1), ec);  // no ClientHello sent: the server must close
  EXPECT_TRUE(ec == asio::error::eof || ec == asio::error::connection_reset) << ec.message();
  // Counted after the close that the client saw (the timer closes the socket first).
  const auto deadline = std::chrono::steady_clock::now() + kHangGuard;
  while (observer_.request_timeouts.load() == 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(1ms);
  }
  EXPECT_EQ(observer_.request_timeouts.load(), 1);
}

TEST(WebAccess, BadFileAtStartThrows) {
  testing::TestCa ca;
  const std::string path = ca.dir() + "/web.yml";
  std::ofstream(path) << "basic_auth_users:\n  user: secret\n";
  EXPECT_THROW(WebAccess access(path), ConfigError);
}

}  // namespace
}  // namespace smtp
