#pragma once
/// A scripted SMTP server on 127.0.0.1:0 (or another loopback endpoint) for tests: it plays the
/// same script to every client, so a test can make a server misbehave in ways no real MTA does.
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "probes/asio.h"

namespace smtp::testing {

/// One step of a script. Sends and expects go over TLS once a kTlsHandshake step has run.
struct Step {
  enum class Kind {
    kSend,
    kDelay,
    kExpectLine,
    kClose,
    kReset,
    kStall,
    kTlsHandshake,
    kExpectRaw,
    kExpectClose,
  };
  Kind kind;
  std::string data;  // kSend: bytes; kExpectLine, kExpectRaw: the expected prefix
  std::chrono::milliseconds duration{0};            // kDelay
  std::shared_ptr<asio::ssl::context> tls_context;  // kTlsHandshake: the server's context
};

inline Step send(std::string bytes) { return {Step::Kind::kSend, std::move(bytes), {}, {}}; }
inline Step delay(std::chrono::milliseconds d) { return {Step::Kind::kDelay, {}, d, {}}; }
/// Reads one line from the client; a line that does not start with `prefix` is a script error.
inline Step expect(std::string prefix) {
  return {Step::Kind::kExpectLine, std::move(prefix), {}, {}};
}
/// Closes the connection cleanly (FIN; no TLS close_notify).
inline Step close() { return {Step::Kind::kClose, {}, {}, {}}; }
/// Aborts the connection (RST).
inline Step reset() { return {Step::Kind::kReset, {}, {}, {}}; }
/// Says nothing more until the client goes away.
inline Step stall() { return {Step::Kind::kStall, {}, {}, {}}; }
/// Performs the server side of a TLS handshake with `context`; from then on sends and expects
/// go over TLS. A failed handshake is a script error and ends the script.
inline Step tls_handshake(std::shared_ptr<asio::ssl::context> context) {
  return {Step::Kind::kTlsHandshake, {}, {}, std::move(context)};
}
/// Reads raw bytes from the TCP socket (beneath any TLS) until at least `prefix.size()` have
/// come; they must start with `prefix`. The rest of what arrived is discarded. For checking that
/// a TLS ClientHello ("\x16\x03") came, before answering it with something else.
inline Step expect_raw(std::string prefix) {
  return {Step::Kind::kExpectRaw, std::move(prefix), {}, {}};
}
/// Waits for the client to close the connection; any byte it sends before is a script error.
inline Step expect_close() { return {Step::Kind::kExpectClose, {}, {}, {}}; }

/// `send` each byte of `bytes` with `gap` between them.
std::vector<Step> dribble(const std::string& bytes, std::chrono::milliseconds gap);

/// A well-behaved server's whole dialogue: greeting, EHLO, QUIT.
std::vector<Step> polite_dialogue(
    const std::string& greeting = "220 fake.test.local ESMTP ready\r\n");

/// 127.0.0.1:0, where the test helpers below listen unless told otherwise.
inline tcp::endpoint loopback_v4() { return {asio::ip::address_v4::loopback(), 0}; }
/// [::1]:0.
inline tcp::endpoint loopback_v6() { return {asio::ip::address_v6::loopback(), 0}; }

class FakeSmtpServer {
 public:
  /// Listens on `bind` and serves `script` on `io` to every connection. Throws
  /// boost::system::system_error if `bind` cannot be bound (a taken port, no IPv6).
  FakeSmtpServer(asio::io_context& io, std::vector<Step> script,
                 const tcp::endpoint& bind = loopback_v4());
  ~FakeSmtpServer();

  std::uint16_t port() const;
  /// Lines the clients sent, in order, without line endings.
  std::vector<std::string> received_lines() const;
  /// Steps that did not go as the script said (unexpected lines, early close); empty if none.
  std::vector<std::string> script_errors() const;
  int connections() const;
  /// Connections whose script has ended and whose client has gone (or that were cut short).
  int finished() const;
  /// Server-side TLS handshakes that completed.
  int tls_handshakes() const;
  /// Per completed handshake, the common name of the client's certificate ("" if none).
  std::vector<std::string> client_certificates() const;
  /// Per completed handshake, the name the client sent in SNI ("" if none).
  std::vector<std::string> server_names() const;

 private:
  struct State;
  std::shared_ptr<State> state_;
};

/// A port on 127.0.0.1 (or `bind`) that refuses connections: bound (so nobody else takes it)
/// but not listening, so a SYN to it is answered with RST.
class RefusingPort {
 public:
  explicit RefusingPort(asio::io_context& io, const tcp::endpoint& bind = loopback_v4());
  std::uint16_t port() const { return socket_.local_endpoint().port(); }

 private:
  tcp::socket socket_;
};

/// A listener on 127.0.0.1 (or `bind`) whose accept queue is full, so that the kernel drops
/// further SYNs and a connect to it times out. Nothing is ever accepted.
class BlackholePort {
 public:
  explicit BlackholePort(asio::io_context& io, const tcp::endpoint& bind = loopback_v4());
  std::uint16_t port() const { return acceptor_.local_endpoint().port(); }

 private:
  tcp::acceptor acceptor_;
  std::vector<tcp::socket> fillers_;
};

}  // namespace smtp::testing
