#pragma once
/// The one place that includes Boost.Asio and Boost.Beast for the whole project.
///
/// GCC 12 with Boost 1.74 fails to compile Asio's awaitable headers unless <utility> comes
/// first, so every file includes Asio through this header and never directly.
#include <utility>

#include <boost/asio.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

namespace smtp {
namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = boost::asio::ip::tcp;
}  // namespace smtp
