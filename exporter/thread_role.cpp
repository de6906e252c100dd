#include "exporter/thread_role.h"

#include <pthread.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <string>

namespace smtp {

std::string_view thread_role_name(ThreadRole role) {
  switch (role) {
    case ThreadRole::kHttp:
      return "http";
    case ThreadRole::kRender:
      return "render";
    case ThreadRole::kConfig:
      return "config";
    case ThreadRole::kPasswordCheck:
      return "bcrypt";
  }
  return "unknown";
}

void take_thread_role(ThreadRole role) {
  pthread_setname_np(pthread_self(), std::string(thread_role_name(role)).c_str());
  if (role == ThreadRole::kHttp) return;
  // PRIO_PROCESS with a thread id: Linux applies niceness to that thread alone.
  const auto tid = static_cast<id_t>(syscall(SYS_gettid));
  errno = 0;
  const int current = getpriority(PRIO_PROCESS, tid);
  if (errno == 0) setpriority(PRIO_PROCESS, tid, current + kBackgroundNiceness);
}

}  // namespace smtp
