#pragma once
/// What --web.config.file asks of each connection and request, kept current with the file: the
/// TLS context for a new connection, basic auth for a request, the extra response headers.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "exporter/http_message.h"
#include "exporter/log.h"
#include "exporter/web_auth.h"
#include "exporter/web_config.h"
#include "probes/asio.h"

namespace smtp {

/// Used on the HTTP server's executor only (one thread); bcrypt runs on a thread of its own.
class WebAccess {
 public:
  /// Reads and validates `path` now: throws ConfigError, as at start a bad file stops the
  /// exporter.
  /// `check_interval`: how often the files are stat()ed at most.
  explicit WebAccess(std::string path,
                     std::chrono::milliseconds check_interval = std::chrono::seconds(1));
  ~WebAccess();  // join()s
  WebAccess(const WebAccess&) = delete;
  WebAccess& operator=(const WebAccess&) = delete;

  /// Waits for the bcrypt checks in progress: call once the HTTP executor's io_context stopped
  /// and before it is destroyed (their completions go to it).
  void join() { bcrypt_pool_.join(); }

  /// Whether connections speak TLS; fixed at start (a file that changes it is refused: restart).
  bool tls() const { return tls_; }
  /// The context for a new connection (the file and its certificates checked first).
  std::shared_ptr<asio::ssl::context> tls_context();

  /// Nothing when `request` may be served, else the answer refusing it (401 with
  /// WWW-Authenticate). /-/healthy is always served.
  asio::awaitable<std::optional<HttpResponse>> check(const HttpRequest& request);

  /// Adds the file's `http_server_config.headers` to `response`.
  void add_headers(HttpResponse& response) const;

  /// bcrypt checks run so far (the rest were answered from the cache).
  std::size_t bcrypt_checks() const { return bcrypt_checks_; }

  /// Reads the file again if it, or a file it names, changed (checked at most once a second).
  /// A bad new version is logged and the last good one stays.
  void refresh();

 private:
  /// What stat() says of a file: a change of any part is a change of the file.
  struct FileStamp {
    int error = 0;
    std::uint64_t device = 0;
    std::uint64_t inode = 0;
    std::uint64_t size = 0;
    std::int64_t mtime_ns = 0;
    bool operator==(const FileStamp&) const = default;
  };
  std::vector<FileStamp> stamps() const;
  asio::awaitable<bool> password_matches(const BasicCredentials& credentials);

  const std::string path_;
  const std::chrono::milliseconds check_interval_;
  std::shared_ptr<const WebConfig> config_;
  bool tls_ = false;
  std::vector<FileStamp> last_stamps_;
  std::chrono::steady_clock::time_point next_check_;
  AuthCache cache_;
  std::size_t checks_running_ = 0;
  std::size_t bcrypt_checks_ = 0;
  asio::thread_pool bcrypt_pool_{1};
  log::RateLimiter log_limiter_;
};

}  // namespace smtp
