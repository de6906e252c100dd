#pragma once
/// The probe's TCP socket, opened the way a probe needs it and no more: a probe costs a dozen
/// system calls, so each one Asio would add on its own is worth saving.
#include <chrono>

#include "probes/asio.h"

namespace smtp {

/// The probe's socket and timers name the io_context's executor type rather than the
/// type-erased any_io_executor: every operation then tracks its work and dispatches without a
/// call through a type-erased executor (a sixth of a probe's user-space instructions before).
using IoExecutor = asio::io_context::executor_type;
using ProbeSocket = asio::basic_stream_socket<tcp, IoExecutor>;
using ProbeTimer =
    asio::basic_waitable_timer<std::chrono::steady_clock,
                               asio::wait_traits<std::chrono::steady_clock>, IoExecutor>;

/// The io_context executor behind a coroutine's `executor`. Throws std::logic_error if it is not
/// an io_context's: probes run on one.
IoExecutor io_executor(const asio::any_io_executor& executor);

/// Opens `socket` for `protocol`, non-blocking from the start (SOCK_NONBLOCK | SOCK_CLOEXEC), and
/// tells Asio so: otherwise its first operation sets the socket non-blocking again (an ioctl),
/// and, as Asio must assume that a socket it did not open may be shared, its close() takes it out
/// of the epoll set first (an epoll_ctl) instead of letting close() do that. An error (EMFILE
/// when the descriptors are spent, say) leaves `socket` closed.
boost::system::error_code open_probe_socket(ProbeSocket& socket, const tcp& protocol);

/// Starts connecting `socket` (from open_probe_socket) to `endpoint`. On success `pending` says
/// whether the connection is still being made: then wait until the socket is writable
/// (async_wait) and ask connect_result(). Asio's async_connect would poll() the socket and read
/// SO_ERROR after that wait; the wait already says the connect has ended, so only SO_ERROR is
/// read.
boost::system::error_code start_connect(ProbeSocket& socket, const tcp::endpoint& endpoint,
                                        bool& pending);

/// How a pending connect ended, once the socket is writable: its SO_ERROR.
boost::system::error_code connect_result(ProbeSocket& socket);

}  // namespace smtp
