#pragma once
/// The check face: `smtp_exporter check -H HOST ...`, a Nagios/Icinga plugin with check_smtp's
/// options where they overlap. One probe, one status line (and long output with -v), exit code
/// 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.
#include <string>
#include <vector>

namespace CLI {
class App;
class ParseError;
}  // namespace CLI

namespace smtp {

/// The arguments as given; run_check_face validates them.
struct CheckFaceOptions {
  std::string host;  // -H
  int port = -1;     // -p; not given: 25, or 465 with -s
  bool ipv4 = false;
  bool ipv6 = false;
  std::string expect;  // -e
  std::string fqdn;    // -F: the EHLO name
  bool starttls = false;
  bool implicit_tls = false;
  bool sni = false;  // accepted for check_smtp's sake: SNI is always sent for a host name
  std::string certificate_days;  // -D warn[,crit]
  std::string warning;           // -w, -c, -W, -C: Nagios ranges in seconds
  std::string critical;
  std::string greeting_warning;
  std::string greeting_critical;
  double timeout = 10;  // -t, seconds
  int verbose = 0;
  bool ignore_quit = false;
  std::string ca_file;
  std::string server_name;
  bool insecure_skip_verify = false;
  /// check_smtp options given that this plugin does not have, each with the reason.
  std::vector<std::string> unsupported;
};

/// Declares the face's arguments on its subcommand.
void add_check_face_options(CLI::App& command, CheckFaceOptions& options);

/// Probes once, prints the plugin output and returns the exit code.
int run_check_face(const CheckFaceOptions& options);

/// Arguments the parser refused: `SMTP UNKNOWN - ...` and 3; `--help`: the help and 0.
int check_face_parse_error(const CLI::App& command, const CLI::ParseError& error);

}  // namespace smtp
