#pragma once
/// The version and the git revision this binary was built from. Only build_info.cpp is compiled
/// with them, so that a new revision rebuilds one file, not the whole tree.
#include <string>
#include <string_view>

namespace smtp {

extern const std::string_view kExporterVersion;
extern const std::string_view kExporterRevision;

/// "PROGRAM, version 0.1.0 (revision: abc1234)", as --version prints it.
std::string version_line(std::string_view program);

}  // namespace smtp
