#include "tests/support/fake_smtp_server.h"

#include <openssl/x509.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <optional>

namespace smtp::testing {

struct FakeSmtpServer::State : std::enable_shared_from_this<FakeSmtpServer::State> {
  State(asio::io_context& io, const tcp::endpoint& bind) : acceptor(io, bind) {}

  tcp::acceptor acceptor;
  std::vector<Step> script;
  std::vector<std::string> received;
  std::vector<std::string> errors;
  std::vector<std::weak_ptr<tcp::socket>> sockets;
  int connections = 0;
  int finished = 0;
  int tls_handshakes = 0;
  std::vector<std::string> client_certificates;
  std::vector<std::string> server_names;

  asio::awaitable<void> accept_loop() {
    auto self = shared_from_this();
    for (;;) {
      boost::system::error_code ec;
      auto socket = std::make_shared<tcp::socket>(
          co_await acceptor.async_accept(asio::redirect_error(asio::use_awaitable, ec)));
      if (ec) co_return;  // acceptor closed
      ++connections;
      sockets.push_back(socket);
      asio::co_spawn(acceptor.get_executor(), serve(self, socket), asio::detached);
    }
  }

  static asio::awaitable<void> serve(std::shared_ptr<State> self,
                                     std::shared_ptr<tcp::socket> socket) {
    // Counts the connection as finished however the coroutine ends (even when destroyed).
    struct FinishedGuard {
      State* state;
      ~FinishedGuard() { ++state->finished; }
    } finished_guard{self.get()};
    std::string pending;  // bytes read from the client, not yet consumed as lines
    std::optional<asio::ssl::stream<tcp::socket&>> tls;  // engaged by a kTlsHandshake step
    boost::system::error_code ec;
    for (const Step& step : self->script) {
      switch (step.kind) {
        case Step::Kind::kSend:
          if (tls) {
            co_await asio::async_write(*tls, asio::buffer(step.data),
                                       asio::redirect_error(asio::use_awaitable, ec));
          } else {
            co_await asio::async_write(*socket, asio::buffer(step.data),
                                       asio::redirect_error(asio::use_awaitable, ec));
          }
          if (ec) co_return;
          break;
        case Step::Kind::kDelay: {
          asio::steady_timer timer(socket->get_executor(), step.duration);
          co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
          break;
        }
        case Step::Kind::kExpectLine: {
          std::size_t n = 0;
          if (tls) {
            n = co_await asio::async_read_until(*tls, asio::dynamic_buffer(pending, 4096), "\n",
                                                asio::redirect_error(asio::use_awaitable, ec));
          } else {
            n = co_await asio::async_read_until(*socket, asio::dynamic_buffer(pending, 4096), "\n",
                                                asio::redirect_error(asio::use_awaitable, ec));
          }
          if (ec) {
            self->errors.push_back("client went away while expecting '" + step.data + "'");
            co_return;
          }
          std::string line = pending.substr(0, n);
          pending.erase(0, n);
          while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
          self->received.push_back(line);
          if (line.rfind(step.data, 0) != 0) {
            self->errors.push_back("expected '" + step.data + "', got '" + line + "'");
          }
          break;
        }
        case Step::Kind::kClose:
          socket->shutdown(tcp::socket::shutdown_both, ec);
          socket->close(ec);
          co_return;
        case Step::Kind::kReset:
          socket->set_option(asio::socket_base::linger(true, 0), ec);
          socket->close(ec);
          co_return;
        case Step::Kind::kStall:
          break;  // falls through to waiting for the client below
        case Step::Kind::kTlsHandshake: {
          if (!pending.empty()) {
            // Plaintext the client sent past its last line would be lost to the TLS layer.
            self->errors.push_back("plaintext bytes pending before the TLS handshake");
          }
          tls.emplace(*socket, *step.tls_context);
          co_await tls->async_handshake(asio::ssl::stream_base::server,
                                        asio::redirect_error(asio::use_awaitable, ec));
          if (ec) {
            self->errors.push_back("tls handshake: " + ec.message());
            co_return;
          }
          ++self->tls_handshakes;
          self->client_certificates.push_back(client_common_name(tls->native_handle()));
          const char* sni = SSL_get_servername(tls->native_handle(), TLSEXT_NAMETYPE_host_name);
          self->server_names.push_back(sni ? sni : "");
          break;
        }
        case Step::Kind::kExpectRaw: {
          std::string raw = tls ? std::string() : std::move(pending);
          pending.clear();
          std::array<char, 4096> chunk;
          while (raw.size() < std::max<std::size_t>(step.data.size(), 1)) {
            std::size_t n = co_await socket->async_read_some(
                asio::buffer(chunk), asio::redirect_error(asio::use_awaitable, ec));
            raw.append(chunk.data(), n);
            if (ec) {
              self->errors.push_back("client went away while expecting raw bytes");
              co_return;
            }
          }
          if (raw.compare(0, step.data.size(), step.data) != 0) {
            self->errors.push_back("raw bytes did not start as expected");
          }
          break;
        }
        case Step::Kind::kExpectClose: {
          std::size_t received = pending.size();
          pending.clear();
          std::array<char, 4096> chunk;
          while (!ec) {
            std::size_t n = 0;
            if (tls) {
              n = co_await tls->async_read_some(asio::buffer(chunk),
                                                asio::redirect_error(asio::use_awaitable, ec));
            } else {
              n = co_await socket->async_read_some(asio::buffer(chunk),
                                                   asio::redirect_error(asio::use_awaitable, ec));
            }
            received += n;
          }
          if (received != 0) {
            self->errors.push_back("client sent " + std::to_string(received) +
                                   " bytes before closing");
          }
          co_return;
        }
      }
    }
    // The script is over: keep the connection until the client closes it.
    std::array<char, 512> sink;
    for (;;) {
      co_await socket->async_read_some(asio::buffer(sink),
                                       asio::redirect_error(asio::use_awaitable, ec));
      if (ec) co_return;
    }
  }

  static std::string client_common_name(SSL* ssl) {
    X509* peer = SSL_get1_peer_certificate(ssl);
    if (peer == nullptr) return {};
    char name[256] = "";
    X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName, name, sizeof name);
    X509_free(peer);
    return name;
  }
};

FakeSmtpServer::FakeSmtpServer(asio::io_context& io, std::vector<Step> script,
                               const tcp::endpoint& bind)
    : state_(std::make_shared<State>(io, bind)) {
  state_->script = std::move(script);
  asio::co_spawn(io, state_->accept_loop(), asio::detached);
}

FakeSmtpServer::~FakeSmtpServer() {
  boost::system::error_code ec;
  state_->acceptor.close(ec);
  for (auto& weak : state_->sockets) {
    if (auto socket = weak.lock()) socket->close(ec);
  }
}

std::uint16_t FakeSmtpServer::port() const { return state_->acceptor.local_endpoint().port(); }
std::vector<std::string> FakeSmtpServer::received_lines() const { return state_->received; }
std::vector<std::string> FakeSmtpServer::script_errors() const { return state_->errors; }
int FakeSmtpServer::connections() const { return state_->connections; }
int FakeSmtpServer::finished() const { return state_->finished; }
int FakeSmtpServer::tls_handshakes() const { return state_->tls_handshakes; }
std::vector<std::string> FakeSmtpServer::client_certificates() const {
  return state_->client_certificates;
}
std::vector<std::string> FakeSmtpServer::server_names() const { return state_->server_names; }

std::vector<Step> dribble(const std::string& bytes, std::chrono::milliseconds gap) {
  std::vector<Step> steps;
  for (char c : bytes) {
    steps.push_back(send(std::string(1, c)));
    steps.push_back(delay(gap));
  }
  return steps;
}

std::vector<Step> polite_dialogue(const std::string& greeting) {
  return {send(greeting),
          expect("EHLO "),
          send("250-fake.test.local Hello\r\n250-PIPELINING\r\n250 SIZE 1000\r\n"),
          expect("QUIT"),
          send("221 2.0.0 Bye\r\n"),
          close()};
}

RefusingPort::RefusingPort(asio::io_context& io, const tcp::endpoint& bind) : socket_(io) {
  socket_.open(bind.protocol());
  socket_.bind(bind);
}

BlackholePort::BlackholePort(asio::io_context& io, const tcp::endpoint& bind) : acceptor_(io) {
  acceptor_.open(bind.protocol());
  acceptor_.bind(bind);
  acceptor_.listen(0);  // Linux queues backlog + 1 connections; SYNs past that are dropped
  tcp::endpoint target = acceptor_.local_endpoint();
  for (int i = 0; i < 4; ++i) {
    tcp::socket filler(io);
    filler.open(target.protocol());
    filler.non_blocking(true);
    // Asio's connect() waits for the handshake even on a non-blocking socket; the system call
    // does not, which is what is wanted here: the SYN is sent and may be dropped.
    ::connect(filler.native_handle(), target.data(), static_cast<socklen_t>(target.size()));
    fillers_.push_back(std::move(filler));
  }
}

}  // namespace smtp::testing
