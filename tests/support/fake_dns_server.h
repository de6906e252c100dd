#pragma once
/// A scripted DNS server over UDP on 127.0.0.1:0, for tests: replies are built by hand from a
/// table of names, so a test can make DNS answer, fail or stay silent as it likes. It runs on a
/// thread of its own, so it keeps reading while the test's io_context is busy.
///
/// Header-only: the test support library's sources are fixed by tests/CMakeLists.txt.
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "probes/asio.h"

namespace smtp::testing {

/// What the fake answers for one name, whatever the record type asked for.
struct DnsAnswer {
  enum class Rcode : std::uint8_t { kNoError = 0, kServFail = 2, kNxDomain = 3 };
  Rcode rcode = Rcode::kNoError;
  bool silent = false;                                    // never answer
  std::chrono::milliseconds delay{0};                     // answer this much later
  std::vector<std::string> a;                             // IPv4 addresses, for A queries
  std::vector<std::string> aaaa;                          // IPv6 addresses, for AAAA queries
  std::vector<std::pair<std::uint16_t, std::string>> mx;  // preference, exchange ("" = root)

  static DnsAnswer addresses(std::vector<std::string> v4, std::vector<std::string> v6 = {}) {
    DnsAnswer answer;
    answer.a = std::move(v4);
    answer.aaaa = std::move(v6);
    return answer;
  }
  static DnsAnswer mx_records(std::vector<std::pair<std::uint16_t, std::string>> records) {
    DnsAnswer answer;
    answer.mx = std::move(records);
    return answer;
  }
  static DnsAnswer nxdomain() { return with_rcode(Rcode::kNxDomain); }
  static DnsAnswer servfail() { return with_rcode(Rcode::kServFail); }
  static DnsAnswer no_data() { return {}; }  // NOERROR, no answers
  static DnsAnswer late(DnsAnswer answer, std::chrono::milliseconds delay) {
    answer.delay = delay;
    return answer;
  }
  static DnsAnswer silence() {
    DnsAnswer answer;
    answer.silent = true;
    return answer;
  }

 private:
  static DnsAnswer with_rcode(Rcode rcode) {
    DnsAnswer answer;
    answer.rcode = rcode;
    return answer;
  }
};

class FakeDnsServer {
 public:
  static constexpr std::uint16_t kTypeA = 1;
  static constexpr std::uint16_t kTypeMx = 15;
  static constexpr std::uint16_t kTypeAaaa = 28;

  /// Listens on 127.0.0.1:0. Names not in the table are answered NXDOMAIN.
  FakeDnsServer()
      : socket_(io_, asio::ip::udp::endpoint(asio::ip::make_address("127.0.0.1"), 0)),
        work_(asio::make_work_guard(io_)) {
    boost::system::error_code ignored;
    // Many queries may arrive while this thread is not scheduled; a large buffer keeps them.
    socket_.set_option(asio::socket_base::receive_buffer_size(4 << 20), ignored);
    receive();
    thread_ = std::thread([this] { io_.run(); });
  }

  ~FakeDnsServer() {
    asio::post(io_, [this] {
      boost::system::error_code ignored;
      socket_.close(ignored);
      work_.reset();
    });
    thread_.join();
  }

  FakeDnsServer(const FakeDnsServer&) = delete;
  FakeDnsServer& operator=(const FakeDnsServer&) = delete;

  /// Sets the answer for `name` (case-insensitive, without the trailing dot).
  void set(const std::string& name, DnsAnswer answer) {
    std::lock_guard lock(mutex_);
    answers_[lower(name)] = std::move(answer);
  }

  std::uint16_t port() const { return port_; }
  /// The server as the Resolver takes it: "127.0.0.1:PORT".
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

  /// Every question received, in order: (name, type).
  std::vector<std::pair<std::string, std::uint16_t>> questions() const {
    std::lock_guard lock(mutex_);
    return questions_;
  }
  std::size_t query_count() const {
    std::lock_guard lock(mutex_);
    return questions_.size();
  }

 private:
  static std::string lower(std::string s) {
    for (char& c : s) {
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    }
    while (!s.empty() && s.back() == '.') s.pop_back();
    return s;
  }

  void receive() {
    socket_.async_receive_from(asio::buffer(packet_), peer_,
                               [this](const boost::system::error_code& ec, std::size_t n) {
                                 if (ec == asio::error::operation_aborted || !socket_.is_open()) {
                                   return;
                                 }
                                 if (!ec) answer(n);
                                 receive();
                               });
  }

  static void put16(std::string& out, std::uint16_t v) {
    out.push_back(static_cast<char>(v >> 8));
    out.push_back(static_cast<char>(v & 0xff));
  }
  static void put32(std::string& out, std::uint32_t v) {
    put16(out, static_cast<std::uint16_t>(v >> 16));
    put16(out, static_cast<std::uint16_t>(v & 0xffff));
  }
  static void put_name(std::string& out, const std::string& name) {
    std::size_t start = 0;
    std::string n = lower(name);
    while (start < n.size()) {
      std::size_t dot = n.find('.', start);
      if (dot == std::string::npos) dot = n.size();
      out.push_back(static_cast<char>(dot - start));
      out.append(n, start, dot - start);
      start = dot + 1;
    }
    out.push_back('\0');
  }
  /// One answer RR whose owner is the question's name (a pointer to offset 12).
  static void put_rr(std::string& out, std::uint16_t type, const std::string& rdata) {
    put16(out, 0xc00c);
    put16(out, type);
    put16(out, 1);  // IN
    put32(out, 300);
    put16(out, static_cast<std::uint16_t>(rdata.size()));
    out += rdata;
  }

  void answer(std::size_t n) {
    const auto* p = reinterpret_cast<const unsigned char*>(packet_.data());
    if (n < 12) return;
    // The question: labels up to the root, then type and class. No compression in queries.
    std::size_t at = 12;
    std::string name;
    while (at < n && p[at] != 0) {
      std::size_t len = p[at];
      if ((len & 0xc0) != 0 || at + 1 + len > n) return;
      if (!name.empty()) name += '.';
      name.append(reinterpret_cast<const char*>(p + at + 1), len);
      at += 1 + len;
    }
    if (at + 5 > n) return;
    std::size_t question_end = at + 5;
    std::uint16_t type = static_cast<std::uint16_t>(p[at + 1] << 8 | p[at + 2]);
    name = lower(name);

    DnsAnswer found = DnsAnswer::nxdomain();
    {
      std::lock_guard lock(mutex_);
      questions_.emplace_back(name, type);
      auto it = answers_.find(name);
      if (it != answers_.end()) found = it->second;
    }
    if (found.silent) return;

    std::string records;
    std::uint16_t count = 0;
    if (found.rcode == DnsAnswer::Rcode::kNoError) {
      if (type == kTypeA) {
        for (const std::string& a : found.a) {
          auto bytes = asio::ip::make_address_v4(a).to_bytes();
          put_rr(records, type, std::string(bytes.begin(), bytes.end()));
          ++count;
        }
      } else if (type == kTypeAaaa) {
        for (const std::string& a : found.aaaa) {
          auto bytes = asio::ip::make_address_v6(a).to_bytes();
          put_rr(records, type, std::string(bytes.begin(), bytes.end()));
          ++count;
        }
      } else if (type == kTypeMx) {
        for (const auto& [preference, exchange] : found.mx) {
          std::string rdata;
          put16(rdata, preference);
          put_name(rdata, exchange);
          put_rr(records, type, rdata);
          ++count;
        }
      }
    }

    std::string reply;
    put16(reply, static_cast<std::uint16_t>(p[0] << 8 | p[1]));  // the query's id
    // QR, the query's opcode and RD, AA, RA, and the rcode.
    std::uint16_t flags =
        0x8000 | (p[2] & 0x79) << 8 | 0x0400 | 0x0080 | static_cast<std::uint16_t>(found.rcode);
    put16(reply, flags);
    put16(reply, 1);
    put16(reply, count);
    put16(reply, 0);
    put16(reply, 0);
    reply.append(packet_.data() + 12, question_end - 12);
    reply += records;
    if (found.delay.count() > 0) {
      auto timer = std::make_shared<asio::steady_timer>(io_, found.delay);
      timer->async_wait([this, timer, reply, peer = peer_](const boost::system::error_code& ec) {
        boost::system::error_code ignored;
        if (!ec && socket_.is_open()) socket_.send_to(asio::buffer(reply), peer, 0, ignored);
      });
      return;
    }
    boost::system::error_code ignored;
    socket_.send_to(asio::buffer(reply), peer_, 0, ignored);
  }

  asio::io_context io_;
  asio::ip::udp::socket socket_;
  std::uint16_t port_ = socket_.local_endpoint().port();
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::thread thread_;
  std::array<char, 1500> packet_{};
  asio::ip::udp::endpoint peer_;

  mutable std::mutex mutex_;
  std::map<std::string, DnsAnswer> answers_;
  std::vector<std::pair<std::string, std::uint16_t>> questions_;
};

}  // namespace smtp::testing
