#include "exporter/probe_report.h"

#include <nlohmann/json.hpp>

#include <cstdarg>
#include <cstdio>

#include "probes/diagnosis.h"

namespace smtp {
namespace {

/// Keys in the order written, so the output reads as the schema is documented.
using Json = nlohmann::ordered_json;

double milliseconds(std::chrono::nanoseconds d) {
  return std::chrono::duration<double, std::milli>(d).count();
}
double seconds(std::chrono::nanoseconds d) { return std::chrono::duration<double>(d).count(); }

/// printf into a std::string, for the text form's aligned columns.
[[gnu::format(printf, 2, 3)]] void append(std::string& out, const char* format, ...) {
  va_list args;
  va_start(args, format);
  va_list again;
  va_copy(again, args);
  const int n = std::vsnprintf(nullptr, 0, format, args);
  va_end(args);
  if (n > 0) {
    const std::size_t at = out.size();
    out.resize(at + static_cast<std::size_t>(n) + 1);  // vsnprintf writes a NUL
    std::vsnprintf(out.data() + at, static_cast<std::size_t>(n) + 1, format, again);
    out.pop_back();
  }
  va_end(again);
}

bool ran(const ProbeResult& result, Phase phase) { return result.phase(phase).has_value(); }

/// A reply code for the text form: the code, or why there is none.
std::string code_text(const ProbeResult& result, Phase phase, int code) {
  if (!ran(result, phase)) return "not reached";
  if (code != 0) return std::to_string(code);
  if (result.failed_phase == phase)
    return "no reply (" + std::string(reason_name(result.failure)) + ")";
  return "no reply";
}

void text_tls(std::string& out, const ProbeTarget& target, const ProbeResult& result, double now) {
  if (target.tls == TlsMode::kNone) {
    append(out, "TLS               not asked for\n");
    return;
  }
  if (!result.tls) {
    append(out, "TLS               %s\n",
           ran(result, Phase::kTlsHandshake) ? "handshake not completed" : "not reached");
    return;
  }
  const TlsFacts& tls = *result.tls;
  append(out, "TLS               %s, %s\n", tls.version.c_str(), tls.cipher.c_str());
  append(out, "certificate       %s\n",
         tls.verified ? "verified" : ("not verified: " + tls.verify_error).c_str());
  std::string names;
  for (const std::string& name : tls.names) names += (names.empty() ? "" : ", ") + name;
  append(out, "  expected name   %s\n", expected_tls_name(target).c_str());
  append(out, "  subject         %s\n", tls.subject.c_str());
  append(out, "  names           %s\n", names.empty() ? "none" : names.c_str());
  append(out, "  issuer          %s\n", tls.issuer.c_str());
  append(out, "  expires         %s\n", describe_expiry(tls.not_after, now).c_str());
  if (tls.earliest_not_after != 0 && tls.earliest_not_after < tls.not_after) {
    append(out, "  chain expires   %s\n", describe_expiry(tls.earliest_not_after, now).c_str());
  }
}

Json json_tls(const ProbeResult& result, double now) {
  if (!result.tls) return nullptr;
  const TlsFacts& tls = *result.tls;
  return {{"version", tls.version},
          {"cipher", tls.cipher},
          {"verified", tls.verified},
          {"verify_error", tls.verified ? Json(nullptr) : Json(tls.verify_error)},
          {"subject", tls.subject},
          {"issuer", tls.issuer},
          {"names", tls.names},
          {"not_after", format_utc(tls.not_after)},
          {"not_after_timestamp_seconds", tls.not_after},
          {"days_left", days_left(tls.not_after, now)},
          {"chain_earliest_not_after_timestamp_seconds", tls.earliest_not_after}};
}

std::string_view finding_about_name(Finding::About about) {
  switch (about) {
    case Finding::About::kFailure:
      return "failure";
    case Finding::About::kQuit:
      return "quit";
    case Finding::About::kCertificate:
      return "certificate";
  }
  return "failure";
}

Json json_code(const ProbeResult& result, Phase phase, int code) {
  return ran(result, phase) && code != 0 ? Json(code) : Json(nullptr);
}

}  // namespace

std::string_view tls_mode_name(TlsMode mode) {
  switch (mode) {
    case TlsMode::kNone:
      return "none";
    case TlsMode::kStartTls:
      return "starttls";
    case TlsMode::kImplicit:
      return "implicit";
  }
  return "none";
}

std::string render_probe_text(const ProbeTarget& target, const ProbeResult& result, double now) {
  std::string out;
  append(out, "probe %s port %u, TLS: %s\n", target.host.c_str(),
         static_cast<unsigned>(target.port), tls_mode_name(target.tls).data());
  append(out, "peer  %s\n", result.peer.empty() ? "not reached" : result.peer.c_str());

  append(out, "\ndialogue (ms since the probe started):\n");
  for (const TranscriptLine& line : result.transcript) {
    append(out, "  %9.3f  %s %s\n", milliseconds(line.at), transcript_marker(line.direction).data(),
           line.text.c_str());
  }
  if (result.transcript_truncated) append(out, "  ... (transcript truncated)\n");

  append(out, "\nphases (ms since the probe started):\n");
  append(out, "  %-14s %9s %9s\n", "phase", "start", "took");
  for (std::size_t i = 0; i < kPhaseCount; ++i) {
    const auto phase = static_cast<Phase>(i);
    if (!result.phase(phase)) continue;
    append(out, "  %-14s %9.3f %9.3f\n", phase_name(phase).data(),
           milliseconds(result.phase_starts[i].value_or(std::chrono::nanoseconds::zero())),
           milliseconds(*result.phase(phase)));
  }
  append(out, "  %-14s %9.3f %9.3f\n", "total", 0.0, milliseconds(result.total));

  append(out, "\n");
  if (result.greeting_latency) {
    append(out, "greeting          %d after %.3f ms\n", result.greeting_code,
           milliseconds(*result.greeting_latency));
  } else {
    append(out, "greeting          %s\n",
           code_text(result, Phase::kGreeting, result.greeting_code).c_str());
  }
  if (result.banner) {
    append(out, "banner hostname   %s\nsoftware          %s\n", result.banner->hostname.c_str(),
           result.banner->software.c_str());
  }
  std::string ehlo = code_text(result, Phase::kEhlo, result.ehlo_code);
  if (result.helo_fallback) ehlo += " (to HELO: EHLO was refused)";
  // Only a plaintext EHLO reply says whether STARTTLS is offered (none with implicit TLS).
  if (result.starttls_advertised) {
    ehlo += *result.starttls_advertised ? ", STARTTLS offered" : ", STARTTLS not offered";
  }
  append(out, "EHLO              %s\n", ehlo.c_str());
  append(out, "QUIT              %s\n", code_text(result, Phase::kQuit, result.quit_code).c_str());
  text_tls(out, target, result, now);

  if (result.success()) {
    append(out, "\nverdict: success\n");
  } else {
    append(out, "\nverdict: %s%s%s\n", reason_name(result.failure).data(),
           result.error_detail.empty() ? "" : " - ", result.error_detail.c_str());
  }
  const std::vector<Finding> findings = diagnose(target, result, now);
  if (!findings.empty()) append(out, "\nwhat to check:\n");
  for (const Finding& finding : findings) {
    append(out, "  %s\n", finding.problem.c_str());
    for (const std::string& hint : finding.hints) append(out, "  - %s\n", hint.c_str());
  }
  return out;
}

std::string render_probe_json(const ProbeTarget& target, const ProbeResult& result, double now) {
  Json out;
  out["schema_version"] = 1;
  out["target"] = {
      {"host", target.host}, {"port", target.port}, {"tls", tls_mode_name(target.tls)}};
  out["peer"] = result.peer.empty() ? Json(nullptr) : Json(result.peer);
  out["success"] = result.success();
  out["result"] = reason_name(result.failure);
  out["failed_phase"] = result.failed_phase ? Json(phase_name(*result.failed_phase)) : nullptr;
  out["error"] = result.error_detail.empty() ? Json(nullptr) : Json(result.error_detail);
  out["duration_seconds"] = seconds(result.total);
  Json phases = Json::array();
  for (std::size_t i = 0; i < kPhaseCount; ++i) {
    const auto phase = static_cast<Phase>(i);
    if (!result.phase(phase)) continue;
    phases.push_back({{"phase", phase_name(phase)},
                      {"start_seconds",
                       seconds(result.phase_starts[i].value_or(std::chrono::nanoseconds::zero()))},
                      {"duration_seconds", seconds(*result.phase(phase))}});
  }
  out["phases"] = phases;
  if (ran(result, Phase::kGreeting)) {
    out["greeting"] = {{"code", json_code(result, Phase::kGreeting, result.greeting_code)},
                       {"seconds", result.greeting_latency ? Json(seconds(*result.greeting_latency))
                                                           : Json(nullptr)},
                       {"lines", result.greeting_lines},
                       {"hostname", result.banner ? Json(result.banner->hostname) : nullptr},
                       {"software", result.banner ? Json(result.banner->software) : nullptr}};
  } else {
    out["greeting"] = nullptr;
  }
  if (ran(result, Phase::kEhlo)) {
    out["ehlo"] = {
        {"code", json_code(result, Phase::kEhlo, result.ehlo_code)},
        {"helo_fallback", result.helo_fallback},
        {"starttls_advertised",
         result.starttls_advertised ? Json(*result.starttls_advertised) : Json(nullptr)}};
  } else {
    out["ehlo"] = nullptr;
  }
  out["quit"] = ran(result, Phase::kQuit)
                    ? Json{{"code", json_code(result, Phase::kQuit, result.quit_code)}}
                    : Json(nullptr);
  out["tls"] = json_tls(result, now);
  Json findings = Json::array();
  for (const Finding& finding : diagnose(target, result, now)) {
    findings.push_back({{"about", finding_about_name(finding.about)},
                        {"problem", finding.problem},
                        {"hints", finding.hints}});
  }
  out["findings"] = findings;
  Json transcript = Json::array();
  for (const TranscriptLine& line : result.transcript) {
    transcript.push_back({{"seconds", seconds(line.at)},
                          {"direction", transcript_source(line.direction)},
                          {"text", line.text}});
  }
  out["transcript"] = transcript;
  out["transcript_truncated"] = result.transcript_truncated;
  return out.dump(2) + "\n";
}

}  // namespace smtp
