#pragma once
/// The probe face's two forms of one probe's result: text for a person at a terminal, and JSON
/// for scripts (its schema is in README.md, "One probe at a terminal").
#include <string>

#include "probes/probe_result.h"
#include "probes/smtp_probe.h"

namespace smtp {

/// Every phase on the transcript's clock, the dialogue, what the server said, the TLS facts in
/// full, the verdict, and what to check. `now` (Unix seconds) dates the certificate.
std::string render_probe_text(const ProbeTarget& target, const ProbeResult& result, double now);

/// The same as one JSON object (schema_version 1).
std::string render_probe_json(const ProbeTarget& target, const ProbeResult& result, double now);

/// "none", "starttls", "implicit".
std::string_view tls_mode_name(TlsMode mode);

}  // namespace smtp
