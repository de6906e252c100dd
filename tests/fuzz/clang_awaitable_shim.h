#pragma once
/// Force-included (-include) into config_fuzz's sources, and only there.
///
/// Clang 14 with Boost 1.74 has no coroutine support, so Asio does not declare `awaitable`, and
/// probes/smtp_probe.h (which exporter/config.h includes for TlsMode and ProbeTarget) fails on
/// run_probe's declaration alone. The config parser never calls run_probe; declaring the class
/// template (incomplete) is enough for that declaration to compile.
#include "probes/asio.h"

namespace boost::asio {
template <typename T, typename Executor = any_io_executor>
class awaitable;
}  // namespace boost::asio
