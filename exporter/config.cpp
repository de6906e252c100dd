#include "exporter/config.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <sstream>

#include "exporter/config_parser.h"
#include "exporter/config_values.h"
#include "exporter/config_yaml.h"
#include "probes/banner.h"

namespace smtp {
namespace {

// A config bigger than this is a mistake (a log file passed by accident), not a config.
constexpr std::size_t kMaxConfigBytes = 64 * 1024 * 1024;

// Records where each document starts and ignores the rest.
class DocumentStarts : public YAML::EventHandler {
 public:
  std::vector<YAML::Mark> starts;

  void OnDocumentStart(const YAML::Mark& mark) override { starts.push_back(mark); }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}
};

// Where the first documents of `text` start; at most 3, which is enough to refuse a second one.
// yaml-cpp 0.7's LoadAll() loops forever (allocating) on a stray "," at the top level, and Load()
// returns an empty document for it, silently (jbeder/yaml-cpp#1040, fixed after 0.7). Walking
// the documents ourselves with a bound shows it: the same start twice means the parser is stuck.
std::vector<YAML::Mark> document_starts(const std::string& text) {
  std::istringstream in(text);
  YAML::Parser parser(in);
  DocumentStarts handler;
  while (handler.starts.size() < 3 && parser.HandleNextDocument(handler)) {
  }
  return std::move(handler.starts);
}

// yaml-cpp says "illegal tab when looking for indentation" or worse ("illegal block entry")
// when a tab indents a line: name the real problem when the line blamed (or the one before it)
// is indented with a tab.
bool tab_indents_near(const std::string& text, int line) {
  std::istringstream in(text);
  std::string current;
  for (int n = 1; n <= line && std::getline(in, current); ++n) {
    if (n < line - 1) continue;
    const std::size_t first = current.find_first_not_of(" \t");
    const std::string_view indent(current.data(),
                                  first == std::string::npos ? current.size() : first);
    if (indent.find('\t') != std::string_view::npos) return true;
  }
  return false;
}

}  // namespace

ProbeTarget TargetConfig::probe_target() const {
  ProbeTarget target;
  target.host = host;
  target.port = port;
  target.helo_name = helo_name;
  target.tls = tls;
  target.ip_protocol = ip_protocol;
  target.tls_context = tls_context;
  target.tls_server_name = tls_config.server_name;
  target.tls_insecure_skip_verify = tls_config.insecure_skip_verify;
  target.timeout = timeout;
  return target;
}

bool parse_address(std::string_view text, std::string& host, std::uint16_t& port,
                   std::string& error) {
  HostPort parsed;
  // At a terminal and in a Nagios command, a bare host means the SMTP port.
  if (auto problem = parse_host_port(text, {.default_port = 25}, parsed)) {
    error = *problem;
    return false;
  }
  host = parsed.host;
  port = parsed.port;
  return true;
}

bool parse_tls_mode(std::string_view text, TlsMode& mode) {
  std::optional<TlsMode> parsed = parse_tls_mode(text);
  if (parsed) mode = *parsed;
  return parsed.has_value();
}

Config parse_config(std::string_view yaml, std::string_view source,
                    const std::string& default_helo_name) {
  const std::string text(yaml);
  using config_yaml::line_of;
  YAML::Node root;
  try {
    const std::vector<YAML::Mark> starts = document_starts(text);
    if (starts.size() > 1) {
      if (starts[1].pos == starts[0].pos) {
        // The parser did not move: see document_starts().
        const std::size_t pos = static_cast<std::size_t>(starts[0].pos);
        fail_config(source, line_of(starts[0]), "",
                    "unexpected " + quote(pos < text.size() ? text.substr(pos, 1) : "") +
                        " at the start of a document");
      }
      fail_config(source, line_of(starts[1]), "",
                  "more than one YAML document; a config file holds one");
    }
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    const int line = line_of(e.mark);
    if (tab_indents_near(text, line)) {
      fail_config(source, line, "",
                  "a tab indents this line or the one before: YAML indents with spaces only (" +
                      escape_controls(e.msg) + ")");
    }
    fail_config(source, line, "", escape_controls(e.msg));
  }
  try {
    return parse_config_document(root, source, default_helo_name);
  } catch (const YAML::Exception& e) {
    // Conversions are checked before they are made; this would be a bug, but still name the file.
    fail_config(source, line_of(e.mark), "", escape_controls(e.msg));
  }
}

std::string read_config_text(const std::string& path) {
  const auto cannot_read = [&path](int error) {
    return ConfigError(path + ": cannot read: " + std::strerror(error));
  };
  // Without blocking, and only a regular file: a FIFO (or a device) at the config path once froze
  // the whole process at reload.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) throw cannot_read(errno);
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw ConfigError(path + ": cannot read: not a regular file");
  }
  std::string text;
  char buffer[65536];
  for (;;) {
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int error = errno;
      ::close(fd);
      throw cannot_read(error);
    }
    if (n == 0) break;
    if (text.size() + static_cast<std::size_t>(n) > kMaxConfigBytes) {
      ::close(fd);
      throw ConfigError(path + ": cannot read: larger than " +
                        std::to_string(kMaxConfigBytes / (1024 * 1024)) + " MiB");
    }
    text.append(buffer, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return text;
}

Config load_config_file(const std::string& path, const std::string& default_helo_name) {
  return parse_config(read_config_text(path), path, default_helo_name);
}

std::string_view embedded_default_config() {
  return R"(# Built in: used when no --config.file is given.
targets:
  - name: localhost
    address: localhost:25
    interval: 30s
    timeout: 10s
)";
}

std::string machine_hostname() {
  char name[HOST_NAME_MAX + 1] = {};
  if (::gethostname(name, sizeof name - 1) != 0) return "localhost";
  const std::string result(name);
  if (result.empty() || !is_valid_domain(result)) return "localhost";
  return result;
}

}  // namespace smtp
