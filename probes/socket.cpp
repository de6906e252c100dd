#include "probes/socket.h"

#include <sys/socket.h>
#include <unistd.h>

#include <boost/version.hpp>
#include <cerrno>
#include <stdexcept>

namespace smtp {
namespace {

// Asio keeps what it knows of a socket in state flags of its implementation, reached through
// basic_socket's protected `impl_`: a pointer to that member, taken in a derived class, reads it
// on any socket. The flags are Asio's detail, checked against the versions this was written for.
static_assert(BOOST_VERSION >= 107400 && BOOST_VERSION <= 108100,
              "check Asio's socket_ops state flags (socket_ops.hpp) before using this version");

class SocketState : public ProbeSocket {
 public:
  static asio::detail::socket_ops::state_type& of(ProbeSocket& socket) {
    return (socket.*(&SocketState::impl_)).get_implementation().state_;
  }
};

}  // namespace

IoExecutor io_executor(const asio::any_io_executor& executor) {
  const IoExecutor* io = executor.target<IoExecutor>();
  if (io == nullptr) throw std::logic_error("a probe runs on an io_context's executor");
  return *io;
}

boost::system::error_code open_probe_socket(ProbeSocket& socket, const tcp& protocol) {
  const int fd = ::socket(protocol.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return {errno, asio::error::get_system_category()};
  boost::system::error_code ec;
  socket.assign(protocol, fd, ec);  // registers it with the reactor (epoll_ctl ADD)
  if (ec) {
    ::close(fd);
    return ec;
  }
  namespace ops = asio::detail::socket_ops;
  auto& state = SocketState::of(socket);
  state |= ops::internal_non_blocking;  // SOCK_NONBLOCK did it
  state &= ~ops::possible_dup;          // ours alone: close() leaves the epoll set by itself
  return {};
}

boost::system::error_code start_connect(ProbeSocket& socket, const tcp::endpoint& endpoint,
                                        bool& pending) {
  pending = false;
  if (::connect(socket.native_handle(), endpoint.data(), static_cast<socklen_t>(endpoint.size())) ==
      0) {
    return {};
  }
  if (errno == EINPROGRESS) {
    pending = true;
    return {};
  }
  return {errno, asio::error::get_system_category()};
}

boost::system::error_code connect_result(ProbeSocket& socket) {
  int error = 0;
  socklen_t length = sizeof error;
  if (::getsockopt(socket.native_handle(), SOL_SOCKET, SO_ERROR, &error, &length) != 0) {
    error = errno;
  }
  return {error, asio::error::get_system_category()};
}

}  // namespace smtp
