#pragma once
/// The small text helpers every part of the project needs: ASCII case folding and the one way
/// bytes from the network are made printable. Header-only: each is a few lines on hot paths.
#include <algorithm>
#include <string>
#include <string_view>

namespace smtp {

/// ASCII-only case folding: protocol keywords are ASCII, and the C locale's tolower would
/// depend on the process's locale.
constexpr char ascii_lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; }
constexpr char ascii_upper(char c) { return c >= 'a' && c <= 'z' ? static_cast<char>(c - 32) : c; }

/// Case-insensitive (ASCII) equality, as SMTP keywords, HTTP header values and DNS names compare.
constexpr bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return ascii_lower(x) == ascii_lower(y);
         });
}

/// `text` lower-cased (ASCII).
inline std::string ascii_lowered(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = ascii_lower(c);
  return out;
}

/// Appends `\xNN` (lower-case hex) for one byte.
inline void append_hex_escape(std::string& out, unsigned char c) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += "\\x";
  out += kHex[c >> 4];
  out += kHex[c & 0xf];
}

/// `bytes` with every control byte, DEL and non-ASCII byte as `\xNN`: safe to print on one line
/// whatever a server sent.
inline std::string printable(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  // Runs of printable bytes are copied whole: every probe's dialogue comes through here.
  std::size_t run = 0;
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    const auto c = static_cast<unsigned char>(bytes[i]);
    if (c >= 0x20 && c < 0x7f) continue;
    out.append(bytes.substr(run, i - run));
    append_hex_escape(out, c);
    run = i + 1;
  }
  out.append(bytes.substr(run));
  return out;
}

}  // namespace smtp
