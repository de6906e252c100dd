#pragma once
/// What the HTTP server tells its owner about connections: the exporter counts it in metrics.
#include <cstddef>

namespace smtp {

/// Why the server closed a connection to make room.
enum class HttpEviction {
  kIdle,               ///< at the connection cap, the longest waiting: no byte of a request yet
  kIncompleteRequest,  ///< at the connection cap, the longest waiting: a request begun, unfinished
  kSlowReader,         ///< unfinished responses pinned more bytes than allowed: the earliest writer
};

/// What took too long.
enum class HttpTimeout {
  kRequest,   ///< no complete request within the request timeout
  kResponse,  ///< the peer accepted no byte of a response for the write-stall timeout
};

/// Called on the server's executor. Implementations must be cheap: they run on the probe thread.
class HttpObserver {
 public:
  virtual ~HttpObserver() = default;
  /// The number of open connections changed.
  virtual void http_connections(std::size_t open) = 0;
  /// A new connection was closed at once: at the cap, and no connection was waiting for a request.
  virtual void http_connection_rejected() = 0;
  virtual void http_connection_evicted(HttpEviction why) = 0;
  virtual void http_connection_timed_out(HttpTimeout what) = 0;
  /// The bytes of response bodies held by unfinished writes (each shared body once) changed.
  virtual void http_pinned_bytes(std::size_t bytes) = 0;
};

}  // namespace smtp
