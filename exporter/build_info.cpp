#include "exporter/build_info.h"

namespace smtp {

// Both set by CMake on this file alone.
const std::string_view kExporterVersion = SMTP_EXPORTER_VERSION;
const std::string_view kExporterRevision = SMTP_EXPORTER_REVISION;

std::string version_line(std::string_view program) {
  std::string line(program);
  line.append(", version ").append(kExporterVersion);
  line.append(" (revision: ").append(kExporterRevision).append(")");
  return line;
}

}  // namespace smtp
