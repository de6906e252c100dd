#include "exporter/process_metrics.h"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <charconv>
#include <cstdint>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <string_view>

namespace smtp {
namespace {

// The fields of /proc/self/stat that we use (see proc(5); numbered from 1 there).
struct ProcStat {
  std::uint64_t utime_ticks = 0;      // field 14
  std::uint64_t stime_ticks = 0;      // field 15
  std::uint64_t starttime_ticks = 0;  // field 22, since boot
  std::uint64_t vsize_bytes = 0;      // field 23
  std::int64_t rss_pages = 0;         // field 24
};

std::optional<std::string> read_file(const char* path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) return std::nullopt;
  return text;
}

template <typename T>
bool parse_number(std::string_view text, T& value) {
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  return ec == std::errc{} && ptr == text.data() + text.size();
}

std::optional<ProcStat> read_proc_stat() {
  const auto text = read_file("/proc/self/stat");
  if (!text) return std::nullopt;
  // The command name (field 2) is in parentheses and may itself hold spaces and ')': the
  // fields we want follow the last ')'.
  const auto paren = text->rfind(')');
  if (paren == std::string::npos) return std::nullopt;
  std::string_view rest = std::string_view(*text).substr(paren + 1);
  ProcStat stat;
  bool ok = true;
  int field = 2;
  while (!rest.empty()) {
    const auto begin = rest.find_first_not_of(" \n");
    if (begin == std::string_view::npos) break;
    rest.remove_prefix(begin);
    const auto end = rest.find_first_of(" \n");
    const std::string_view token = rest.substr(0, end);
    rest = end == std::string_view::npos ? std::string_view{} : rest.substr(end);
    ++field;
    switch (field) {
      case 14:
        ok = ok && parse_number(token, stat.utime_ticks);
        break;
      case 15:
        ok = ok && parse_number(token, stat.stime_ticks);
        break;
      case 22:
        ok = ok && parse_number(token, stat.starttime_ticks);
        break;
      case 23:
        ok = ok && parse_number(token, stat.vsize_bytes);
        break;
      case 24:
        ok = ok && parse_number(token, stat.rss_pages);
        break;
      default:
        break;
    }
    if (field >= 24) break;
  }
  if (!ok || field < 24) return std::nullopt;
  return stat;
}

// Boot time, in seconds since the epoch: the "btime" line of /proc/stat.
std::optional<std::uint64_t> read_boot_time() {
  const auto text = read_file("/proc/stat");
  if (!text) return std::nullopt;
  std::istringstream lines(*text);
  std::string line;
  constexpr std::string_view kKey = "btime ";
  while (std::getline(lines, line)) {
    if (line.compare(0, kKey.size(), kKey) != 0) continue;
    std::uint64_t value = 0;
    if (parse_number(std::string_view(line).substr(kKey.size()), value)) return value;
    return std::nullopt;
  }
  return std::nullopt;
}

// Entries of /proc/self/fd, not counting the descriptor that reading the directory takes.
std::optional<std::size_t> count_open_fds() {
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return std::nullopt;
  const int own_fd = dirfd(dir);
  std::size_t count = 0;
  while (const dirent* entry = readdir(dir)) {
    const std::string_view name = entry->d_name;
    int fd = -1;
    if (!parse_number(name, fd)) continue;  // "." and ".."
    if (fd != own_fd) ++count;
  }
  closedir(dir);
  return count;
}

double ticks_per_second() {
  const long ticks = sysconf(_SC_CLK_TCK);
  return ticks > 0 ? static_cast<double>(ticks) : 100.0;
}

prometheus::MetricFamily family(std::string name, std::string help, prometheus::MetricType type,
                                double value) {
  prometheus::ClientMetric metric;
  if (type == prometheus::MetricType::Counter) {
    metric.counter.value = value;
  } else {
    metric.gauge.value = value;
  }
  return prometheus::MetricFamily{std::move(name), std::move(help), type, {std::move(metric)}};
}

}  // namespace

ProcessCollector::ProcessCollector() {
  const auto stat = read_proc_stat();
  const auto boot = read_boot_time();
  if (stat && boot) {
    start_time_seconds_ = static_cast<double>(*boot) +
                          static_cast<double>(stat->starttime_ticks) / ticks_per_second();
  }
}

std::vector<prometheus::MetricFamily> ProcessCollector::Collect() const {
  using prometheus::MetricType;
  std::vector<prometheus::MetricFamily> families;
  if (const auto stat = read_proc_stat()) {
    families.push_back(
        family("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.",
               MetricType::Counter,
               static_cast<double>(stat->utime_ticks + stat->stime_ticks) / ticks_per_second()));
    const long page_size = sysconf(_SC_PAGESIZE);
    families.push_back(family("process_resident_memory_bytes", "Resident memory size in bytes.",
                              MetricType::Gauge,
                              static_cast<double>(stat->rss_pages) *
                                  static_cast<double>(page_size > 0 ? page_size : 4096)));
    families.push_back(family("process_virtual_memory_bytes", "Virtual memory size in bytes.",
                              MetricType::Gauge, static_cast<double>(stat->vsize_bytes)));
  }
  if (const auto open_fds = count_open_fds()) {
    families.push_back(family("process_open_fds", "Number of open file descriptors.",
                              MetricType::Gauge, static_cast<double>(*open_fds)));
  }
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0) {
    families.push_back(family("process_max_fds", "Maximum number of open file descriptors.",
                              MetricType::Gauge, static_cast<double>(limit.rlim_cur)));
  }
  if (start_time_seconds_) {
    families.push_back(family("process_start_time_seconds",
                              "Start time of the process since unix epoch in seconds.",
                              MetricType::Gauge, *start_time_seconds_));
  }
  return families;
}

}  // namespace smtp
