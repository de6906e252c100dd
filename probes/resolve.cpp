#include "probes/resolve.h"

#include <ares.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <tuple>
#include <unordered_map>

namespace smtp {

namespace {

using Clock = std::chrono::steady_clock;
using boost::system::error_code;

static_assert(static_cast<int>(DnsError::kNoData) == ARES_ENODATA);
static_assert(static_cast<int>(DnsError::kFormatError) == ARES_EFORMERR);
static_assert(static_cast<int>(DnsError::kServerFailure) == ARES_ESERVFAIL);
static_assert(static_cast<int>(DnsError::kNotFound) == ARES_ENOTFOUND);
static_assert(static_cast<int>(DnsError::kNotImplemented) == ARES_ENOTIMP);
static_assert(static_cast<int>(DnsError::kRefused) == ARES_EREFUSED);
static_assert(static_cast<int>(DnsError::kBadName) == ARES_EBADNAME);
static_assert(static_cast<int>(DnsError::kBadResponse) == ARES_EBADRESP);
static_assert(static_cast<int>(DnsError::kConnectionRefused) == ARES_ECONNREFUSED);
static_assert(static_cast<int>(DnsError::kTimeout) == ARES_ETIMEOUT);
static_assert(static_cast<int>(DnsError::kDestroyed) == ARES_EDESTRUCTION);
static_assert(static_cast<int>(DnsError::kCancelled) == ARES_ECANCELLED);

class DnsCategory final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "dns"; }

  std::string message(int status) const override {
    switch (status) {
      case ARES_SUCCESS:
        return "success";
      case ARES_ENODATA:
        return "no records of the requested type";
      case ARES_EFORMERR:
        return "DNS server could not parse the query (FORMERR)";
      case ARES_ESERVFAIL:
        return "DNS server failure (SERVFAIL)";
      case ARES_ENOTFOUND:
        return "host not found";
      case ARES_ENOTIMP:
        return "DNS server does not implement the query (NOTIMP)";
      case ARES_EREFUSED:
        return "DNS server refused the query (REFUSED)";
      case ARES_EBADNAME:
        return "not a valid domain name";
      case ARES_EBADRESP:
        return "malformed DNS reply";
      case ARES_ECONNREFUSED:
        // Also what c-ares 1.18 reports when each of several servers answered SERVFAIL/REFUSED.
        return "no DNS server usable (connection refused, or SERVFAIL/REFUSED from each)";
      case ARES_ETIMEOUT:
        return "DNS lookup timed out";
      case ARES_EDESTRUCTION:
        return "resolver shut down";
      case ARES_ECANCELLED:
        return "DNS lookup cancelled";
      default:
        return ares_strerror(status);
    }
  }

  boost::system::error_condition default_error_condition(int status) const noexcept override {
    namespace errc = boost::system::errc;
    switch (status) {
      case ARES_ETIMEOUT:
        return errc::make_error_condition(errc::timed_out);
      case ARES_ECONNREFUSED:
        return errc::make_error_condition(errc::connection_refused);
      case ARES_ENOMEM:
        return errc::make_error_condition(errc::not_enough_memory);
      case ARES_EDESTRUCTION:
      case ARES_ECANCELLED:
        return errc::make_error_condition(errc::operation_canceled);
      default:
        return {status, *this};
    }
  }
};

error_code dns_error(int status) { return {status, dns_category()}; }

void init_library_once() {
  static std::once_flag once;
  std::call_once(once, [] {
    int status = ares_library_init(ARES_LIB_INIT_ALL);
    if (status != ARES_SUCCESS) {
      throw std::runtime_error(std::string("c-ares: ") + ares_strerror(status));
    }
  });
}

/// "ip", "ip:port", "[ipv6]" or "[ipv6]:port", or a bare IPv6 address -> a c-ares server.
ares_addr_port_node parse_server(const std::string& text) {
  std::string host = text;
  std::string port;
  if (!text.empty() && text.front() == '[') {
    std::size_t close = text.find(']');
    if (close == std::string::npos)
      throw std::invalid_argument("DNS server '" + text + "': no ']'");
    host = text.substr(1, close - 1);
    std::string rest = text.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') throw std::invalid_argument("DNS server '" + text + "': bad port");
      port = rest.substr(1);
    }
  } else if (std::count(text.begin(), text.end(), ':') == 1) {
    std::size_t colon = text.find(':');
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  error_code ec;
  asio::ip::address address = asio::ip::make_address(host, ec);
  if (ec) throw std::invalid_argument("DNS server '" + text + "': not an IP address");
  int port_number = 53;
  if (!port.empty()) {
    bool digits = port.size() <= 5 && std::all_of(port.begin(), port.end(),
                                                  [](char c) { return c >= '0' && c <= '9'; });
    port_number = digits ? std::stoi(port) : 0;
    if (port_number < 1 || port_number > 65535) {
      throw std::invalid_argument("DNS server '" + text + "': bad port");
    }
  }
  ares_addr_port_node node{};
  if (address.is_v4()) {
    node.family = AF_INET;
    node.addr.addr4.s_addr = htonl(address.to_v4().to_uint());
  } else {
    node.family = AF_INET6;
    auto bytes = address.to_v6().to_bytes();
    std::memcpy(node.addr.addr6._S6_un._S6_u8, bytes.data(), bytes.size());
  }
  node.udp_port = port_number;
  node.tcp_port = port_number;
  return node;
}

std::string lower_case(std::string s) {
  for (char& c : s) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return s;
}

}  // namespace

const boost::system::error_category& dns_category() {
  static const DnsCategory category;
  return category;
}

// ---------------------------------------------------------------------------------------------
// The channel and its I/O.
//
// c-ares tells us through the sock_state callback which sockets it wants to read or write; each
// gets a stream_descriptor that only waits (the socket stays c-ares'), and readiness is handed
// back through ares_process_fd. One timer serves both c-ares' retry schedule and every lookup's
// deadline. Handlers hold weak pointers, so a handler that runs after the Resolver is gone (an
// aborted wait) touches nothing.

struct Resolver::Impl : std::enable_shared_from_this<Resolver::Impl> {
  /// A lookup with its query in c-ares. Owned by c-ares: freed in the query's callback, which
  /// c-ares calls exactly once (with ARES_EDESTRUCTION at the latest, from ares_destroy).
  struct LookupBase {
    explicit LookupBase(Impl* owner) : impl(owner) {}
    virtual ~LookupBase() = default;
    /// Delivers `timed_out` to the waiter; the query stays in c-ares.
    virtual void expire() = 0;

    Impl* impl;
    std::uint16_t port = 0;  // host lookups: the port of the endpoints
    /// Present while the waiter has not been answered: the lookup's place among the deadlines.
    std::optional<std::multimap<Clock::time_point, LookupBase*>::iterator> waiting;
  };

  template <class Result>
  struct Lookup : LookupBase {
    using LookupBase::LookupBase;
    virtual void deliver(Result result) = 0;
    void expire() override {
      Result result;
      result.timed_out = true;
      result.error = DnsError::kTimeout;
      deliver(std::move(result));
    }
  };

  /// Holds the awaiting coroutine's completion handler until the one result is known.
  template <class Result, class Handler>
  struct LookupWith final : Lookup<Result> {
    LookupWith(Impl* owner, Handler&& h) : Lookup<Result>(owner), handler(std::move(h)) {}
    void deliver(Result result) override {
      // Never resume the coroutine from inside c-ares (it may start lookups, or destroy the
      // Resolver): post it to its own executor.
      auto executor = asio::get_associated_executor(handler, this->impl->executor);
      asio::post(executor,
                 [h = std::move(handler), r = std::move(result)]() mutable { h(std::move(r)); });
    }
    Handler handler;
  };

  /// One socket c-ares asked us to watch.
  struct Watch {
    explicit Watch(const asio::any_io_executor& executor) : descriptor(executor) {}
    ~Watch() {
      if (descriptor.is_open()) descriptor.release();  // the socket is c-ares' to close
    }
    asio::posix::stream_descriptor descriptor;
    bool want_read = false;
    bool want_write = false;
    bool read_waiting = false;
    bool write_waiting = false;
  };

  Impl(asio::any_io_executor ex, const ResolverOptions& options)
      : executor(std::move(ex)), attempt_timeout(options.attempt_timeout), timer(executor) {
    init_library_once();
    if (options.tries < 1) throw std::invalid_argument("resolver: tries must be at least 1");
    if (options.attempt_timeout < std::chrono::milliseconds(1)) {
      throw std::invalid_argument("resolver: attempt timeout must be at least 1ms");
    }
    std::vector<ares_addr_port_node> servers;
    for (const std::string& server : options.servers) servers.push_back(parse_server(server));

    ares_options ares{};
    int mask = ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_SOCK_STATE_CB;
    ares.timeout = static_cast<int>(options.attempt_timeout.count());
    ares.tries = options.tries;
    ares.sock_state_cb = &Impl::on_sock_state;
    ares.sock_state_cb_data = this;
    // Thousands of answers can arrive while the io thread is busy elsewhere; a datagram the
    // kernel drops costs a whole attempt_timeout. (The kernel caps this at net.core.rmem_max.)
    ares.socket_receive_buffer_size = 1 << 20;
    mask |= ARES_OPT_SOCK_RCVBUF;
    char dns_only[] = "b";
    if (!servers.empty()) {
      // Explicit servers mean exactly those: no search list, no /etc/hosts.
      ares.domains = nullptr;
      ares.ndomains = 0;
      ares.lookups = dns_only;
      mask |= ARES_OPT_DOMAINS | ARES_OPT_LOOKUPS;
    }
    for (std::size_t i = 0; i + 1 < servers.size(); ++i) servers[i].next = &servers[i + 1];

    // c-ares 1.18 turns a SERVFAIL, REFUSED or NOTIMP into "try the next server" and, once
    // every server did so, reports ECONNREFUSED. With a single server there is nothing to fail
    // over to, so let such replies through (ARES_FLAG_NOCHECKRESP): their rcode becomes the
    // status, and an operator reads "SERVFAIL" rather than "connection refused".
    auto init = [&](bool single_server) {
      ares.flags = single_server ? ARES_FLAG_NOCHECKRESP : 0;
      int status = ares_init_options(&channel, &ares, mask | ARES_OPT_FLAGS);
      if (status != ARES_SUCCESS) {
        channel = nullptr;
        throw std::runtime_error(std::string("c-ares: ") + ares_strerror(status));
      }
      if (!servers.empty()) {
        status = ares_set_servers_ports(channel, servers.data());
        if (status != ARES_SUCCESS) {
          ares_destroy(channel);
          channel = nullptr;
          throw std::runtime_error(std::string("c-ares: setting servers: ") +
                                   ares_strerror(status));
        }
      }
    };
    init(servers.size() == 1);
    if (servers.empty() && count_servers() == 1) {
      ares_destroy(channel);  // no query yet: nothing to call back
      init(true);
    }
  }

  int count_servers() {
    ares_addr_port_node* list = nullptr;
    if (ares_get_servers_ports(channel, &list) != ARES_SUCCESS) return 0;
    int count = 0;
    for (ares_addr_port_node* node = list; node != nullptr; node = node->next) ++count;
    ares_free_data(list);
    return count;
  }

  ~Impl() { shutdown(); }

  /// Ends every lookup (waiters get DnsError::kDestroyed) and lets go of the sockets.
  void shutdown() {
    if (channel == nullptr) return;
    ares_channel doomed = channel;
    ares_destroy(doomed);  // calls every query's callback, and on_sock_state for each socket
    channel = nullptr;
    watches.clear();
    error_code ignored;
    timer.cancel(ignored);
  }

  // --- starting lookups ------------------------------------------------------------------------

  template <class Result, class Handler, class Launch>
  void start(Handler&& handler, Clock::time_point deadline, std::uint16_t port, Launch launch) {
    auto* lookup =
        new LookupWith<Result, std::decay_t<Handler>>(this, std::forward<Handler>(handler));
    lookup->port = port;
    Clock::time_point now = Clock::now();
    if (channel == nullptr || deadline <= now) {
      if (channel == nullptr) {
        Result result;
        result.error = DnsError::kDestroyed;
        lookup->deliver(std::move(result));
      } else {
        lookup->expire();
      }
      delete lookup;
      return;
    }
    lookup->waiting = deadlines.emplace(deadline, lookup);
    ++in_flight;
    launch(static_cast<Lookup<Result>*>(lookup));  // may call back at once (and free lookup)
    // c-ares' first attempt times out one attempt_timeout from now; the deadline may be sooner.
    schedule(std::min(deadline, now + attempt_timeout));
  }

  /// Called from a query's callback: answers the waiter unless its deadline already did.
  template <class Result>
  void complete(Lookup<Result>* lookup, Result result) {
    if (lookup->waiting) {
      deadlines.erase(*lookup->waiting);
      lookup->waiting.reset();
      lookup->deliver(std::move(result));
    }
    --in_flight;
    delete lookup;
  }

  static void on_addrinfo(void* arg, int status, int /*timeouts*/, ares_addrinfo* info) {
    auto* lookup = static_cast<Lookup<ResolveResult>*>(arg);
    ResolveResult result;
    if (status == ARES_SUCCESS && info != nullptr) {
      for (ares_addrinfo_node* node = info->nodes; node != nullptr; node = node->ai_next) {
        if (node->ai_family == AF_INET && node->ai_addrlen >= sizeof(sockaddr_in)) {
          const auto* sin = reinterpret_cast<const sockaddr_in*>(node->ai_addr);
          result.endpoints.emplace_back(asio::ip::address_v4(ntohl(sin->sin_addr.s_addr)),
                                        lookup->port);
        } else if (node->ai_family == AF_INET6 && node->ai_addrlen >= sizeof(sockaddr_in6)) {
          const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(node->ai_addr);
          asio::ip::address_v6::bytes_type bytes;
          std::memcpy(bytes.data(), sin6->sin6_addr.s6_addr, bytes.size());
          result.endpoints.emplace_back(asio::ip::address_v6(bytes, sin6->sin6_scope_id),
                                        lookup->port);
        }
      }
    }
    if (info != nullptr) ares_freeaddrinfo(info);
    if (result.endpoints.empty()) {
      result.error = dns_error(status == ARES_SUCCESS ? ARES_ENODATA : status);
      result.timed_out = status == ARES_ETIMEOUT;
    }
    lookup->impl->complete(lookup, std::move(result));
  }

  static void on_mx(void* arg, int status, int /*timeouts*/, unsigned char* answer, int length) {
    auto* lookup = static_cast<Lookup<MxResult>*>(arg);
    MxResult result;
    if (status == ARES_SUCCESS) {
      ares_mx_reply* replies = nullptr;
      status = ares_parse_mx_reply(answer, length, &replies);
      bool root_seen = false;
      for (ares_mx_reply* mx = replies; mx != nullptr; mx = mx->next) {
        std::string host = lower_case(mx->host != nullptr ? mx->host : "");
        while (!host.empty() && host.back() == '.') host.pop_back();
        if (host.empty()) {
          root_seen = true;  // RFC 7505: "." as the exchange
        } else {
          result.records.push_back({mx->priority, std::move(host)});
        }
      }
      if (replies != nullptr) ares_free_data(replies);
      if (status == ARES_SUCCESS) {
        std::sort(result.records.begin(), result.records.end(), [](const auto& a, const auto& b) {
          return std::tie(a.preference, a.host) < std::tie(b.preference, b.host);
        });
        result.records.erase(std::unique(result.records.begin(), result.records.end()),
                             result.records.end());
        result.null_mx = root_seen && result.records.empty();
      }
    }
    if (status == ARES_ENODATA) {
      result.no_records = true;  // the name exists (NOERROR) without MX records
    } else if (status != ARES_SUCCESS) {
      result.records.clear();
      result.error = dns_error(status);
      result.timed_out = status == ARES_ETIMEOUT;
    }
    lookup->impl->complete(lookup, std::move(result));
  }

  // --- the timer -------------------------------------------------------------------------------

  /// Makes the one timer fire no later than `when`.
  void schedule(Clock::time_point when) {
    if (channel == nullptr) return;
    if (timer_armed_at && *timer_armed_at <= when) return;
    timer_armed_at = when;
    timer.expires_at(when);  // aborts the live wait, whose handler then sees an old generation
    std::uint64_t generation = ++timer_generation;
    timer.async_wait([weak = weak_from_this(), generation](const error_code&) {
      std::shared_ptr<Impl> self = weak.lock();
      if (self && self->timer_generation == generation) self->on_timer();
    });
  }

  void on_timer() {
    timer_armed_at.reset();
    if (channel == nullptr) return;
    ares_process_fd(channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);  // c-ares' retries and give-ups
    Clock::time_point now = Clock::now();
    while (!deadlines.empty() && deadlines.begin()->first <= now) {
      LookupBase* lookup = deadlines.begin()->second;
      deadlines.erase(deadlines.begin());
      lookup->waiting.reset();
      lookup->expire();
    }
    std::optional<Clock::time_point> next;
    if (in_flight > 0) {
      timeval tv{};
      if (ares_timeout(channel, nullptr, &tv) != nullptr) {
        // ares_timeout walks every query: at most one call per kMinTick keeps that cheap when
        // thousands are in flight. Deadlines are kept exactly.
        auto wait = std::chrono::seconds(tv.tv_sec) + std::chrono::microseconds(tv.tv_usec);
        next = now + std::max<Clock::duration>(wait, kMinTick);
      }
    }
    if (!deadlines.empty() && (!next || deadlines.begin()->first < *next)) {
      next = deadlines.begin()->first;
    }
    if (next) schedule(*next);
  }

  /// After socket activity c-ares may have sent a retry (a SERVFAIL, a TCP fallback), whose
  /// timeout is at least one attempt_timeout away: never sleep longer than that while queries
  /// are in flight; the timer then asks ares_timeout for the exact time.
  void keep_timer_honest() {
    if (in_flight > 0) schedule(Clock::now() + attempt_timeout);
  }

  // --- the sockets -----------------------------------------------------------------------------

  static void on_sock_state(void* data, ares_socket_t fd, int readable, int writable) {
    static_cast<Impl*>(data)->watch(fd, readable != 0, writable != 0);
  }

  void watch(int fd, bool readable, bool writable) {
    auto it = watches.find(fd);
    if (!readable && !writable) {
      // c-ares is about to close the socket: take it out of the reactor now, while the number
      // is still this socket's (a handler may hold the Watch a little longer).
      if (it != watches.end()) {
        it->second->descriptor.release();
        watches.erase(it);
      }
      return;
    }
    if (it == watches.end()) {
      auto watch = std::make_shared<Watch>(executor);
      error_code ec;
      watch->descriptor.assign(fd, ec);
      if (ec) return;  // unwatchable: the query ends by c-ares' timeout instead
      it = watches.emplace(fd, std::move(watch)).first;
    }
    it->second->want_read = readable;
    it->second->want_write = writable;
    arm(it->second);
  }

  void arm(const std::shared_ptr<Watch>& watch) {
    if (watch->want_read && !watch->read_waiting) wait(watch, true);
    if (watch->want_write && !watch->write_waiting) wait(watch, false);
  }

  void wait(const std::shared_ptr<Watch>& watch, bool read) {
    (read ? watch->read_waiting : watch->write_waiting) = true;
    watch->descriptor.async_wait(
        read ? asio::posix::descriptor_base::wait_read : asio::posix::descriptor_base::wait_write,
        [weak = weak_from_this(), weak_watch = std::weak_ptr<Watch>(watch),
         read](const error_code& ec) {
          std::shared_ptr<Impl> self = weak.lock();
          std::shared_ptr<Watch> watch = weak_watch.lock();
          if (self && watch) self->on_ready(watch, read, ec);
        });
  }

  void on_ready(const std::shared_ptr<Watch>& watch, bool read, const error_code& ec) {
    (read ? watch->read_waiting : watch->write_waiting) = false;
    if (ec == asio::error::operation_aborted || channel == nullptr) return;
    int fd = watch->descriptor.native_handle();
    if (read ? watch->want_read : watch->want_write) {
      ares_process_fd(channel, read ? fd : ARES_SOCKET_BAD, read ? ARES_SOCKET_BAD : fd);
    }
    // Processing may have closed the socket (and erased its watch), or changed what c-ares
    // wants from it.
    auto it = watches.find(fd);
    if (!ec && it != watches.end() && it->second == watch) arm(watch);
    keep_timer_honest();
  }

  static constexpr Clock::duration kMinTick = std::chrono::milliseconds(5);

  asio::any_io_executor executor;
  Clock::duration attempt_timeout;
  ares_channel channel = nullptr;
  asio::steady_timer timer;
  std::optional<Clock::time_point> timer_armed_at;  // when the live wait fires, if one is live
  std::uint64_t timer_generation = 0;
  std::unordered_map<int, std::shared_ptr<Watch>> watches;
  std::multimap<Clock::time_point, LookupBase*> deadlines;  // lookups whose waiter waits
  std::size_t in_flight = 0;                                // queries c-ares still holds
};

Resolver::Resolver(asio::any_io_executor executor, ResolverOptions options)
    : impl_(std::make_shared<Impl>(std::move(executor), options)) {}

Resolver::Resolver(asio::any_io_executor executor, std::vector<std::string> servers)
    : Resolver(std::move(executor), ResolverOptions{std::move(servers)}) {}

Resolver::~Resolver() {
  // Explicitly, not through the destructor: a coroutine still inside resolve_host may keep the
  // Impl alive, and the waiters must hear of the end now.
  impl_->shutdown();
}

std::size_t Resolver::queries_in_flight() const { return impl_->in_flight; }

asio::awaitable<ResolveResult> Resolver::resolve_host(std::string host, std::uint16_t port,
                                                      Clock::time_point deadline) {
  ResolveResult result;
  error_code ec;
  asio::ip::address literal = asio::ip::make_address(host, ec);
  if (!ec) {
    result.endpoints.emplace_back(literal, port);
    co_return result;
  }
  if (host.empty()) {
    result.error = DnsError::kBadName;
    co_return result;
  }
  // GCC 12 destroys temporaries with destructors inside a co_await expression twice: the
  // initiation and the operation are named locals.
  auto initiation = [impl = impl_, name = std::move(host), port, deadline](auto handler) {
    impl->start<ResolveResult>(std::move(handler), deadline, port,
                               [&](Impl::Lookup<ResolveResult>* lookup) {
                                 ares_addrinfo_hints hints{};
                                 hints.ai_family = AF_UNSPEC;
                                 hints.ai_socktype = SOCK_STREAM;
                                 ares_getaddrinfo(impl->channel, name.c_str(), nullptr, &hints,
                                                  &Impl::on_addrinfo, lookup);
                               });
  };
  auto operation = asio::async_initiate<decltype(asio::use_awaitable), void(ResolveResult)>(
      std::move(initiation), asio::use_awaitable);
  result = co_await std::move(operation);
  co_return result;
}

asio::awaitable<MxResult> Resolver::resolve_mx(std::string domain, Clock::time_point deadline) {
  if (domain.empty()) {
    MxResult result;
    result.error = DnsError::kBadName;
    co_return result;
  }
  auto initiation = [impl = impl_, name = std::move(domain), deadline](auto handler) {
    impl->start<MxResult>(std::move(handler), deadline, 0, [&](Impl::Lookup<MxResult>* lookup) {
      ares_query(impl->channel, name.c_str(), 1 /* IN */, 15 /* MX */, &Impl::on_mx, lookup);
    });
  };
  auto operation = asio::async_initiate<decltype(asio::use_awaitable), void(MxResult)>(
      std::move(initiation), asio::use_awaitable);
  MxResult result = co_await std::move(operation);
  co_return result;
}

// ---------------------------------------------------------------------------------------------
// Without a Resolver: the system's getaddrinfo.

asio::awaitable<ResolveResult> resolve_host(std::string host, std::uint16_t port,
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
    result.error = DnsError::kTimeout;
    co_return result;
  }
  co_return std::move(race->result);
}

}  // namespace smtp
