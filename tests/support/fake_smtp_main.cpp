// smtp_fake_server: the scripted fake SMTP server (fake_smtp_server.h) as a process, for shell
// tests that need a misbehaving server outside a unit test: a real Nagios running the plugin,
// check_smtp side by side with it.
//
//   smtp_fake_server --script FILE --port-file FILE [--ipv6]
//
// Listens on 127.0.0.1:0 (or [::1]:0), writes the port to the port file (FILE.tmp, renamed, so a
// reader never sees half of it), plays the script to every connection until SIGTERM or SIGINT.
// Lines the clients sent and script errors go to stderr. The script, one step a line (blank lines
// and lines starting with '#' are skipped):
//
//   send TEXT          TEXT with C escapes (\r \n \t \\ \xNN) sent as it is
//   expect PREFIX      read a line from the client; it must start with PREFIX
//   delay MS           wait MS milliseconds
//   tls CERT KEY       the server side of a TLS handshake with that certificate (chain) and key
//   close | reset | stall | expect_close    as the Step kinds of the same names
#include <boost/asio/signal_set.hpp>

#include <charconv>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <stdexcept>
#include <string>
#include <vector>

#include "tests/support/fake_smtp_server.h"

namespace {

using smtp::testing::Step;

std::string unescape(std::string_view text, int line_number) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '\\' || i + 1 == text.size()) {
      out += text[i];
      continue;
    }
    const char c = text[++i];
    if (c == 'r') {
      out += '\r';
    } else if (c == 'n') {
      out += '\n';
    } else if (c == 't') {
      out += '\t';
    } else if (c == '\\') {
      out += '\\';
    } else if (c == 'x') {
      unsigned value = 0;
      const char* begin = text.data() + i + 1;
      const bool two_digits = i + 2 < text.size();
      auto [ptr, ec] = std::from_chars(begin, two_digits ? begin + 2 : begin, value, 16);
      if (!two_digits || ec != std::errc() || ptr != begin + 2) {
        throw std::runtime_error("line " + std::to_string(line_number) + ": bad \\x escape");
      }
      out += static_cast<char>(value);
      i += 2;
    } else {
      throw std::runtime_error("line " + std::to_string(line_number) + ": unknown escape \\" +
                               std::string(1, c));
    }
  }
  return out;
}

std::shared_ptr<boost::asio::ssl::context> server_context(const std::string& cert,
                                                          const std::string& key) {
  auto context = std::make_shared<boost::asio::ssl::context>(boost::asio::ssl::context::tls_server);
  context->use_certificate_chain_file(cert);
  context->use_private_key_file(key, boost::asio::ssl::context::pem);
  return context;
}

std::vector<Step> read_script(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::vector<Step> script;
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    if (line.empty() || line.front() == '#') continue;
    const std::size_t space = line.find(' ');
    const std::string verb = line.substr(0, space);
    const std::string rest = space == std::string::npos ? "" : line.substr(space + 1);
    if (verb == "send") {
      script.push_back(smtp::testing::send(unescape(rest, number)));
    } else if (verb == "expect") {
      script.push_back(smtp::testing::expect(rest));
    } else if (verb == "delay") {
      script.push_back(smtp::testing::delay(std::chrono::milliseconds(std::stoi(rest))));
    } else if (verb == "tls") {
      const std::size_t gap = rest.find(' ');
      if (gap == std::string::npos) {
        throw std::runtime_error("line " + std::to_string(number) + ": tls CERT KEY");
      }
      script.push_back(
          smtp::testing::tls_handshake(server_context(rest.substr(0, gap), rest.substr(gap + 1))));
    } else if (verb == "close") {
      script.push_back(smtp::testing::close());
    } else if (verb == "reset") {
      script.push_back(smtp::testing::reset());
    } else if (verb == "stall") {
      script.push_back(smtp::testing::stall());
    } else if (verb == "expect_close") {
      script.push_back(smtp::testing::expect_close());
    } else {
      throw std::runtime_error("line " + std::to_string(number) + ": unknown step '" + verb + "'");
    }
  }
  return script;
}

void write_port_file(const std::string& path, std::uint16_t port) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp);
    out << port << "\n";
    if (!out) throw std::runtime_error("cannot write " + tmp);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    throw std::runtime_error("cannot rename " + tmp + " to " + path);
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string script_file;
  std::string port_file;
  bool ipv6 = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--script" && i + 1 < argc) {
      script_file = argv[++i];
    } else if (arg == "--port-file" && i + 1 < argc) {
      port_file = argv[++i];
    } else if (arg == "--ipv6") {
      ipv6 = true;
    } else {
      std::cerr << "usage: smtp_fake_server --script FILE --port-file FILE [--ipv6]\n";
      return 2;
    }
  }
  if (script_file.empty() || port_file.empty()) {
    std::cerr << "usage: smtp_fake_server --script FILE --port-file FILE [--ipv6]\n";
    return 2;
  }
  try {
    boost::asio::io_context io;
    smtp::testing::FakeSmtpServer server(
        io, read_script(script_file),
        ipv6 ? smtp::testing::loopback_v6() : smtp::testing::loopback_v4());
    boost::asio::signal_set signals(io, SIGTERM, SIGINT);
    signals.async_wait([&io](const boost::system::error_code&, int) { io.stop(); });
    write_port_file(port_file, server.port());
    std::cerr << "smtp_fake_server: listening on port " << server.port() << "\n";
    io.run();
    for (const std::string& line : server.received_lines()) std::cerr << "C: " << line << "\n";
    for (const std::string& error : server.script_errors()) {
      std::cerr << "script error: " << error << "\n";
    }
    std::cerr << "smtp_fake_server: " << server.connections() << " connections\n";
  } catch (const std::exception& e) {
    std::cerr << "smtp_fake_server: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
