#pragma once
/// The HTTP server's request and response, and their conversion from and to Beast's messages.
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "probes/asio.h"

namespace smtp {

struct HttpRequest {
  std::string method;  // "GET", "POST", ...; a HEAD request arrives as "GET" (no body is sent)
  std::string path;    // without the query string
  std::map<std::string, std::string> query;  // decoded; the last value wins
  bool accepts_gzip = false;                 // Accept-Encoding names gzip
  /// Every header, by lower-case name; a repeated header's values joined with ", ".
  std::map<std::string, std::string> headers;
};

/// A response body: immutable bytes, shared by every connection that writes them, so that one
/// rendered /metrics page goes to any number of scrapers without a copy.
class HttpBody {
 public:
  HttpBody() = default;
  /// A body of its own. Implicit, so that a handler may assign text.
  HttpBody(std::string text);  // NOLINT(google-explicit-constructor)
  HttpBody(const char* text) : HttpBody(std::string(text)) {}  // NOLINT
  /// Bytes shared with others; null is an empty body.
  HttpBody(std::shared_ptr<const std::string> bytes)  // NOLINT(google-explicit-constructor)
      : bytes_(std::move(bytes)) {}

  std::string_view view() const { return bytes_ ? std::string_view(*bytes_) : std::string_view(); }
  std::size_t size() const { return bytes_ ? bytes_->size() : 0; }
  /// The shared buffer (null when empty).
  const std::shared_ptr<const std::string>& bytes() const { return bytes_; }

 private:
  std::shared_ptr<const std::string> bytes_;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  HttpBody body;
  bool gzipped = false;  // body is already gzip-compressed: sets Content-Encoding
  std::map<std::string, std::string> headers;  // extra headers, e.g. Allow
};

/// A plain-text response.
HttpResponse text_response(int status, std::string body);

/// The request a handler sees: HEAD as GET, the query string split off and decoded, and whether
/// Accept-Encoding admits gzip.
HttpRequest make_request(const beast::http::request<beast::http::string_body>& message);

/// The client waits for "100 Continue" before it sends the body.
bool expects_continue(const beast::http::request<beast::http::string_body>& message);

/// The status line and headers of `response`, framed for its body: what goes on the wire
/// before the body's own bytes.
std::string response_header(const HttpResponse& response, unsigned version, bool keep_alive);

}  // namespace smtp
