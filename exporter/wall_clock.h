#pragma once
/// The wall clock, where wall time is what is wanted: metric timestamps, certificate dates.
/// Durations are measured with steady_clock everywhere else.
#include <chrono>

namespace smtp {

/// Now, in Unix seconds.
inline double unix_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace smtp
