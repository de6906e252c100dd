#pragma once
/// The probe face: `smtp_exporter probe HOST[:PORT]`, one probe for a person at a terminal.
#include <string>
#include <string_view>

#include "probes/probe_result.h"
#include "probes/smtp_probe.h"

#include "probes/smtp_probe.h"

namespace CLI {
class App;
}

namespace smtp {

struct ProbeFaceOptions {
  std::string address;  // HOST[:PORT]
  std::string tls = "none";
  std::string helo_name;  // empty: the machine's host name
  std::string timeout = "10s";
  std::string ca_file;      // empty: the system's CA store
  std::string server_name;  // empty: the host
  bool insecure_skip_verify = false;
  bool json = false;
};

/// Declares the face's arguments on its subcommand.
void add_probe_face_options(CLI::App& command, ProbeFaceOptions& options);

/// Runs one probe of `target` on an io_context of its own, to the end.
ProbeResult probe_once(const ProbeTarget& target);

/// Runs the probe and prints every phase, the dialogue and the verdict. Exit code 0 if the probe
/// succeeded, 1 if it failed, 2 for bad arguments.
int run_probe_face(const ProbeFaceOptions& options);

}  // namespace smtp
