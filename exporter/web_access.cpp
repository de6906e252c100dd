#include "exporter/web_access.h"

#include <sys/stat.h>

#include <cerrno>
#include <utility>

#include "exporter/config.h"
#include "exporter/thread_role.h"

namespace smtp {
namespace {

using Clock = std::chrono::steady_clock;

// Outcomes remembered: a few users with their scrapers' passwords, and room for wrong ones.
constexpr std::size_t kCacheEntries = 1024;
// bcrypt checks queued or running at once; past it, a request is refused at once, so that a
// flood of made-up passwords cannot queue minutes of bcrypt work.
constexpr std::size_t kMaxChecks = 16;

// On the bcrypt thread. Strings by value: the coroutine outlives its caller's expression.
asio::awaitable<bool> run_bcrypt(std::string password, std::string hash) {
  co_return bcrypt_matches(password, hash);
}

HttpResponse unauthorized() {
  HttpResponse response = text_response(401, "Unauthorized\n");
  response.headers["WWW-Authenticate"] = "Basic realm=\"smtp_exporter\"";
  return response;
}

}  // namespace

WebAccess::WebAccess(std::string path, std::chrono::milliseconds check_interval)
    : path_(std::move(path)),
      check_interval_(check_interval),
      config_(std::make_shared<const WebConfig>(load_web_config_file(path_))),
      tls_(config_->tls != nullptr),
      last_stamps_(stamps()),
      next_check_(Clock::now() + check_interval),
      cache_(kCacheEntries) {
  asio::post(bcrypt_pool_, [] { take_thread_role(ThreadRole::kPasswordCheck); });
}

WebAccess::~WebAccess() { join(); }

std::vector<WebAccess::FileStamp> WebAccess::stamps() const {
  std::vector<FileStamp> result;
  for (const std::string& file : config_->files) {
    struct stat info {};
    FileStamp stamp;
    if (::stat(file.c_str(), &info) != 0) {
      stamp.error = errno;
    } else {
      stamp.device = info.st_dev;
      stamp.inode = info.st_ino;
      stamp.size = static_cast<std::uint64_t>(info.st_size);
      stamp.mtime_ns = info.st_mtim.tv_sec * 1'000'000'000LL + info.st_mtim.tv_nsec;
    }
    result.push_back(stamp);
  }
  return result;
}

void WebAccess::refresh() {
  const Clock::time_point now = Clock::now();
  if (now < next_check_) return;
  next_check_ = now + check_interval_;
  std::vector<FileStamp> current = stamps();
  if (current == last_stamps_) return;
  last_stamps_ = std::move(current);  // a bad version is reported once, not once a second
  try {
    auto loaded = std::make_shared<const WebConfig>(load_web_config_file(path_));
    if ((loaded->tls != nullptr) != tls_) {
      throw ConfigError(path_ + ": tls_server_config cannot be " + (tls_ ? "removed" : "added") +
                        " while running: restart the exporter");
    }
    config_ = std::move(loaded);
    last_stamps_ = stamps();  // the new version may name other files
    log::write(log::Level::kInfo, "web config reloaded", {{"file", path_}});
  } catch (const ConfigError& e) {
    log::write(log::Level::kError, "web config reload failed, keeping the last good one",
               {{"err", e.what()}});
  }
}

std::shared_ptr<asio::ssl::context> WebAccess::tls_context() {
  refresh();
  return config_->tls_context;
}

void WebAccess::add_headers(HttpResponse& response) const {
  for (const auto& [name, value] : config_->headers) response.headers[name] = value;
}

asio::awaitable<std::optional<HttpResponse>> WebAccess::check(const HttpRequest& request) {
  refresh();
  if (request.path == "/-/healthy" || config_->users.empty()) co_return std::nullopt;
  const auto header = request.headers.find("authorization");
  if (header == request.headers.end()) co_return unauthorized();
  const std::optional<BasicCredentials> credentials = parse_basic_authorization(header->second);
  if (!credentials) co_return unauthorized();
  const bool matches = co_await password_matches(*credentials);
  if (!matches) co_return unauthorized();
  co_return std::nullopt;
}

asio::awaitable<bool> WebAccess::password_matches(const BasicCredentials& credentials) {
  // Held by this frame: a reload while bcrypt runs must not change what is compared.
  const std::shared_ptr<const WebConfig> config = config_;
  const auto user = config->users.find(credentials.user);
  const bool known = user != config->users.end();
  const std::string& hash = known ? user->second : kUnknownUserHash;
  const AuthCache::Key key = AuthCache::key(credentials.user, hash, credentials.password);
  if (const std::optional<bool> cached = cache_.find(key)) co_return *cached&& known;
  if (checks_running_ >= kMaxChecks) {
    log_limiter_.write("bcrypt_busy", log::Level::kWarn,
                       "basic auth refused without a check: too many bcrypt checks in progress",
                       {{"max_checks", kMaxChecks}});
    co_return false;
  }
  ++checks_running_;
  ++bcrypt_checks_;
  struct Done {
    std::size_t& running;
    ~Done() { --running; }
  } done{checks_running_};
  asio::awaitable<bool> check = run_bcrypt(credentials.password, hash);
  const asio::thread_pool::executor_type pool = bcrypt_pool_.get_executor();
  const bool matches = co_await asio::co_spawn(pool, std::move(check), asio::use_awaitable);
  cache_.insert(key, matches);
  co_return matches&& known;
}

}  // namespace smtp
