#pragma once
/// UTF-8 validation, shared by the config checks (label values, target names) and the logger
/// (which must write valid UTF-8 whatever a server sent).
#include <array>
#include <cstddef>
#include <string_view>

namespace smtp {

/// The length of the well-formed UTF-8 sequence at text[i] (1-4), or 0 if there is none:
/// a bad lead or continuation byte, a truncated sequence, an overlong form, a surrogate or a
/// code point past U+10FFFF. The decoded code point goes to `code`.
inline std::size_t utf8_sequence(std::string_view text, std::size_t i, char32_t& code) {
  const auto c = static_cast<unsigned char>(text[i]);
  std::size_t length = 0;
  if (c < 0x80) {
    code = c;
    return 1;
  } else if ((c & 0xe0) == 0xc0) {
    length = 2;
    code = c & 0x1f;
  } else if ((c & 0xf0) == 0xe0) {
    length = 3;
    code = c & 0x0f;
  } else if ((c & 0xf8) == 0xf0) {
    length = 4;
    code = c & 0x07;
  } else {
    return 0;
  }
  if (i + length > text.size()) return 0;
  for (std::size_t k = 1; k < length; ++k) {
    const auto next = static_cast<unsigned char>(text[i + k]);
    if ((next & 0xc0) != 0x80) return 0;
    code = (code << 6) | (next & 0x3f);
  }
  constexpr std::array<char32_t, 5> kMinForLength{0, 0, 0x80, 0x800, 0x10000};
  if (code < kMinForLength[length] || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff)) {
    return 0;
  }
  return length;
}

}  // namespace smtp
