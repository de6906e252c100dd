#include "exporter/process_metrics.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <prometheus/text_serializer.h>

#include <chrono>
#include <cstring>
#include <ctime>
#include <map>
#include <sstream>
#include <vector>

namespace smtp {
namespace {

using prometheus::MetricFamily;
using prometheus::MetricType;
using testing::HasSubstr;

const MetricFamily* find_family(const std::vector<MetricFamily>& families,
                                const std::string& name) {
  for (const auto& family : families) {
    if (family.name == name) return &family;
  }
  return nullptr;
}

// The value of a one-series family, or -1 if the family is missing.
double value_of(const std::vector<MetricFamily>& families, const std::string& name) {
  const MetricFamily* family = find_family(families, name);
  if (family == nullptr || family->metric.size() != 1) return -1;
  return family->type == MetricType::Counter ? family->metric[0].counter.value
                                             : family->metric[0].gauge.value;
}

TEST(ProcessCollectorTest, EveryFamilyIsPresentWithItsType) {
  const std::map<std::string, MetricType> expected = {
      {"process_cpu_seconds_total", MetricType::Counter},
      {"process_resident_memory_bytes", MetricType::Gauge},
      {"process_virtual_memory_bytes", MetricType::Gauge},
      {"process_open_fds", MetricType::Gauge},
      {"process_max_fds", MetricType::Gauge},
      {"process_start_time_seconds", MetricType::Gauge},
  };
  const auto families = ProcessCollector().Collect();
  EXPECT_EQ(families.size(), expected.size());
  for (const auto& [name, type] : expected) {
    const MetricFamily* family = find_family(families, name);
    ASSERT_NE(family, nullptr) << name;
    EXPECT_EQ(family->type, type) << name;
    EXPECT_FALSE(family->help.empty()) << name;
    ASSERT_EQ(family->metric.size(), 1u) << name;
    EXPECT_TRUE(family->metric[0].label.empty()) << name;
  }
}

TEST(ProcessCollectorTest, ValuesAreConsistent) {
  const auto families = ProcessCollector().Collect();
  EXPECT_GE(value_of(families, "process_cpu_seconds_total"), 0);
  const double resident = value_of(families, "process_resident_memory_bytes");
  EXPECT_GT(resident, 0);
  EXPECT_GE(value_of(families, "process_virtual_memory_bytes"), resident);
  const double open_fds = value_of(families, "process_open_fds");
  EXPECT_GE(open_fds, 3);  // stdin, stdout, stderr at least
  EXPECT_GE(value_of(families, "process_max_fds"), open_fds);
}

TEST(ProcessCollectorTest, OpenFdsFollowTheFilesThisProcessOpens) {
  const ProcessCollector collector;
  const double before = value_of(collector.Collect(), "process_open_fds");
  std::vector<int> fds;
  for (int i = 0; i < 10; ++i) {
    const int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    ASSERT_GE(fd, 0) << std::strerror(errno);
    fds.push_back(fd);
  }
  EXPECT_EQ(value_of(collector.Collect(), "process_open_fds"), before + 10);
  for (int fd : fds) close(fd);
  EXPECT_EQ(value_of(collector.Collect(), "process_open_fds"), before);
}

TEST(ProcessCollectorTest, MaxFdsIsTheSoftLimitAtCollectTime) {
  rlimit original{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &original), 0);
  const ProcessCollector collector;
  EXPECT_EQ(value_of(collector.Collect(), "process_max_fds"),
            static_cast<double>(original.rlim_cur));
  ASSERT_GT(original.rlim_cur, 100u);
  rlimit lowered = original;
  lowered.rlim_cur = original.rlim_cur - 7;
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &lowered), 0);
  const double seen = value_of(collector.Collect(), "process_max_fds");
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &original), 0);
  EXPECT_EQ(seen, static_cast<double>(lowered.rlim_cur));
}

TEST(ProcessCollectorTest, CpuSecondsGrowWhenTheProcessWorks) {
  const ProcessCollector collector;
  const double before = value_of(collector.Collect(), "process_cpu_seconds_total");
  // Burn CPU until the kernel's tick-granular accounting moves; the deadline only guards
  // against a hang.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  volatile unsigned sink = 0;
  double after = before;
  while (after <= before && std::chrono::steady_clock::now() < deadline) {
    for (unsigned i = 0; i < 1000000; ++i) sink = sink + i;
    after = value_of(collector.Collect(), "process_cpu_seconds_total");
  }
  EXPECT_GT(after, before);
}

TEST(ProcessCollectorTest, ResidentMemoryGrowsWhenMemoryIsTouched) {
  const ProcessCollector collector;
  const double before = value_of(collector.Collect(), "process_resident_memory_bytes");
  constexpr std::size_t kSize = 64 << 20;
  std::vector<char> block(kSize, 1);  // value-initialised: every page is written
  const double after = value_of(collector.Collect(), "process_resident_memory_bytes");
  EXPECT_GE(after - before, kSize / 2.0);
  EXPECT_EQ(block[kSize - 1], 1);
}

TEST(ProcessCollectorTest, StartTimeIsInTheRecentPast) {
  const ProcessCollector collector;
  const double start = value_of(collector.Collect(), "process_start_time_seconds");
  const double now = static_cast<double>(std::time(nullptr));
  // This test process started moments ago; /proc's boot time is whole seconds, hence the slack.
  EXPECT_LE(start, now + 2);
  EXPECT_GT(start, now - 3600);
  EXPECT_EQ(value_of(collector.Collect(), "process_start_time_seconds"), start);
}

TEST(ProcessCollectorTest, SerializesWithTheStandardNames) {
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, ProcessCollector().Collect());
  const std::string text = out.str();
  EXPECT_THAT(text, HasSubstr("# TYPE process_cpu_seconds_total counter\n"));
  EXPECT_THAT(text, HasSubstr("\nprocess_cpu_seconds_total "));
  for (const char* gauge : {"process_resident_memory_bytes", "process_virtual_memory_bytes",
                            "process_open_fds", "process_max_fds", "process_start_time_seconds"}) {
    // Built with append, not "literal" + string: GCC 12's -O3 reports a false -Wrestrict for
    // operator+(const char*, string&&) (GCC bug 105651), which breaks Release builds.
    EXPECT_THAT(text, HasSubstr(std::string("# TYPE ").append(gauge).append(" gauge\n"))) << gauge;
    EXPECT_THAT(text, HasSubstr(std::string("\n").append(gauge).append(" "))) << gauge;
  }
}

}  // namespace
}  // namespace smtp
