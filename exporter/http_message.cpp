#include "exporter/http_message.h"

#include <sstream>
#include <utility>

#include "exporter/http_parse.h"
#include "probes/text.h"

namespace smtp {
namespace {

namespace http = beast::http;

// Beast 1.74 hands out boost::string_view.
std::string_view to_std(beast::string_view s) { return {s.data(), s.size()}; }

}  // namespace

HttpBody::HttpBody(std::string text)
    : bytes_(text.empty() ? nullptr : std::make_shared<const std::string>(std::move(text))) {}

HttpResponse text_response(int status, std::string body) {
  HttpResponse response;
  response.status = status;
  response.body = std::move(body);
  return response;
}

HttpRequest make_request(const http::request<http::string_body>& message) {
  HttpRequest request;
  // HEAD is GET without the body: handlers see GET, and the server leaves the body out.
  request.method = message.method() == http::verb::head
                       ? std::string("GET")
                       : std::string(to_std(message.method_string()));
  const std::string_view target = to_std(message.target());
  const auto question = target.find('?');
  request.path = std::string(target.substr(0, question));
  if (question != std::string_view::npos) request.query = parse_query(target.substr(question + 1));
  std::string accept_encoding;
  for (auto [it, end] = message.equal_range(http::field::accept_encoding); it != end; ++it) {
    accept_encoding.append(to_std(it->value())).push_back(',');
  }
  request.accepts_gzip = parse_accepts_gzip(accept_encoding);
  for (const auto& field : message) {
    std::string& value = request.headers[ascii_lowered(to_std(field.name_string()))];
    if (!value.empty()) value += ", ";
    value += to_std(field.value());
  }
  return request;
}

bool expects_continue(const http::request<http::string_body>& message) {
  return message.version() >= 11 &&
         iequals(trim_ows(to_std(message[http::field::expect])), "100-continue");
}

std::string response_header(const HttpResponse& response, unsigned version, bool keep_alive) {
  http::response<http::empty_body> message;
  message.version(version);
  message.result(response.status >= 100 && response.status <= 999
                     ? static_cast<unsigned>(response.status)
                     : 500u);
  if (!response.content_type.empty()) {
    message.set(http::field::content_type, response.content_type);
  }
  if (response.gzipped) {
    message.set(http::field::content_encoding, "gzip");
    message.set(http::field::vary, "Accept-Encoding");
  }
  for (const auto& [name, value] : response.headers) message.set(name, value);
  // Set last so that no extra header can contradict the framing.
  message.keep_alive(keep_alive);
  message.content_length(response.body.size());
  std::ostringstream out;
  out << message.base();
  return std::move(out).str();
}

}  // namespace smtp
