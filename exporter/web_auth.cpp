#include "exporter/web_auth.h"

#include <crypt.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include <cstring>
#include <memory>

#include "probes/text.h"

namespace smtp {

const std::string kUnknownUserHash = "$2b$10$lcLZ6qt5tTY1CAxRfKJnLObOoaN2holCkjBpMYK1gQ7lsU3OxrSp2";

std::optional<BasicCredentials> parse_basic_authorization(std::string_view header) {
  constexpr std::string_view kScheme = "basic ";
  if (header.size() <= kScheme.size() || !iequals(header.substr(0, kScheme.size()), kScheme)) {
    return std::nullopt;
  }
  std::string_view encoded = header.substr(kScheme.size());
  while (!encoded.empty() && encoded.front() == ' ') encoded.remove_prefix(1);
  // Padded base64, as RFC 7617 clients send it; EVP_DecodeBlock wants whole quads.
  if (encoded.empty() || encoded.size() % 4 != 0 || encoded.size() > 8192) return std::nullopt;
  std::string decoded(encoded.size() / 4 * 3, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(decoded.data()),
                                reinterpret_cast<const unsigned char*>(encoded.data()),
                                static_cast<int>(encoded.size()));
  if (n < 0) return std::nullopt;
  // EVP_DecodeBlock counts the padding as zero bytes.
  std::size_t size = static_cast<std::size_t>(n);
  for (std::size_t i = encoded.size(); i > 0 && encoded[i - 1] == '=' && size > 0; --i) --size;
  decoded.resize(size);
  const std::size_t colon = decoded.find(':');
  if (colon == std::string::npos) return std::nullopt;
  return BasicCredentials{decoded.substr(0, colon), decoded.substr(colon + 1)};
}

bool is_bcrypt_hash(std::string_view hash) {
  // $2y$10$ + 22 characters of salt + 31 of hash.
  if (hash.size() != 60 || hash[0] != '$' || hash[1] != '2' || hash[3] != '$' || hash[6] != '$') {
    return false;
  }
  if (hash[2] != 'a' && hash[2] != 'b' && hash[2] != 'y') return false;
  if (hash[4] < '0' || hash[4] > '9' || hash[5] < '0' || hash[5] > '9') return false;
  const int cost = (hash[4] - '0') * 10 + (hash[5] - '0');
  if (cost < 4 || cost > 31) return false;
  for (const char c : hash.substr(7)) {
    const bool base64 = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                        (c >= '0' && c <= '9') || c == '.' || c == '/';
    if (!base64) return false;
  }
  return true;
}

bool bcrypt_matches(const std::string& password, const std::string& hash) {
  if (!is_bcrypt_hash(hash)) return false;
  // crypt_data is 32 KiB: not for a thread pool's stack.
  auto data = std::make_unique<crypt_data>();
  const char* computed = crypt_r(password.c_str(), hash.c_str(), data.get());
  if (computed == nullptr || std::strlen(computed) != hash.size()) return false;
  return CRYPTO_memcmp(computed, hash.data(), hash.size()) == 0;
}

AuthCache::Key AuthCache::key(std::string_view user, std::string_view hash,
                              std::string_view password) {
  std::array<unsigned char, SHA256_DIGEST_LENGTH> digest{};
  SHA256(reinterpret_cast<const unsigned char*>(password.data()), password.size(), digest.data());
  // The user goes last: it is the one part of any length that may hold any byte.
  Key key(hash);
  key.push_back('\0');
  key.append(reinterpret_cast<const char*>(digest.data()), digest.size());
  key.append(user);
  return key;
}

std::optional<bool> AuthCache::find(const Key& key) {
  const auto it = entries_.find(key);
  if (it == entries_.end()) return std::nullopt;
  order_.splice(order_.begin(), order_, it->second.place);
  return it->second.matches;
}

void AuthCache::insert(const Key& key, bool matches) {
  if (capacity_ == 0) return;
  if (const auto it = entries_.find(key); it != entries_.end()) {
    it->second.matches = matches;
    order_.splice(order_.begin(), order_, it->second.place);
    return;
  }
  if (entries_.size() >= capacity_) {
    entries_.erase(order_.back());
    order_.pop_back();
  }
  order_.push_front(key);
  entries_.emplace(key, Entry{matches, order_.begin()});
}

}  // namespace smtp
