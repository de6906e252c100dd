#include "exporter/thread_role.h"

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <string>
#include <thread>

namespace smtp {
namespace {

struct ThreadState {
  std::string name;
  int niceness = 0;
};

int own_niceness() { return getpriority(PRIO_PROCESS, static_cast<id_t>(syscall(SYS_gettid))); }

ThreadState own_state() {
  ThreadState state;
  std::ifstream comm("/proc/thread-self/comm");
  std::getline(comm, state.name);
  state.niceness = own_niceness();
  return state;
}

// What a new thread looks like after taking `role`.
ThreadState state_after(ThreadRole role) {
  ThreadState state;
  std::thread thread([&] {
    take_thread_role(role);
    state = own_state();
  });
  thread.join();
  return state;
}

int background_niceness() { return std::min(own_niceness() + kBackgroundNiceness, 19); }

TEST(ThreadRoleTest, TheHttpThreadIsNamedAndKeepsItsPriority) {
  const ThreadState state = state_after(ThreadRole::kHttp);
  EXPECT_EQ(state.name, "http");
  EXPECT_EQ(state.niceness, own_niceness());
}

TEST(ThreadRoleTest, BackgroundThreadsAreNamedAndYieldToTheProbeThread) {
  const int before = own_niceness();
  for (const ThreadRole role :
       {ThreadRole::kRender, ThreadRole::kConfig, ThreadRole::kPasswordCheck}) {
    const ThreadState state = state_after(role);
    EXPECT_EQ(state.name, thread_role_name(role));
    EXPECT_EQ(state.niceness, background_niceness()) << state.name;
  }
  // Niceness is the thread's own: the thread that started them keeps its own.
  EXPECT_EQ(own_niceness(), before);
}

TEST(ThreadRoleTest, RolesHaveTheNamesTheReadmeGives) {
  EXPECT_EQ(thread_role_name(ThreadRole::kRender), "render");
  EXPECT_EQ(thread_role_name(ThreadRole::kConfig), "config");
  EXPECT_EQ(thread_role_name(ThreadRole::kPasswordCheck), "bcrypt");
}

}  // namespace
}  // namespace smtp
