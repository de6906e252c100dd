#pragma once
/// Runs code with stderr sent to a temporary file, for tests of what the exporter logs.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

namespace smtp::testing {

/// Runs `body` with stderr (the descriptor the logger writes to) redirected, and returns what
/// was written.
template <typename Body>
std::string capture_stderr(Body body) {
  char path[] = "/tmp/smtp_test_stderr_XXXXXX";
  const int fd = ::mkstemp(path);
  EXPECT_GE(fd, 0);
  ::unlink(path);
  std::fflush(stderr);
  const int saved = ::dup(STDERR_FILENO);
  ::dup2(fd, STDERR_FILENO);
  body();
  ::dup2(saved, STDERR_FILENO);
  ::close(saved);
  std::string out;
  char buffer[4096];
  ::lseek(fd, 0, SEEK_SET);
  for (ssize_t n; (n = ::read(fd, buffer, sizeof buffer)) > 0;) out.append(buffer, n);
  ::close(fd);
  return out;
}

}  // namespace smtp::testing
