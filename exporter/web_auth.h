#pragma once
/// Basic auth for the HTTP endpoints: the Authorization header, bcrypt checks (libxcrypt), and a
/// bounded cache of their outcomes, so that a scrape every few seconds does not pay bcrypt's
/// cost (tens to hundreds of milliseconds) each time.
#include <array>
#include <cstddef>
#include <list>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace smtp {

struct BasicCredentials {
  std::string user;
  std::string password;
};

/// The user and password of an `Authorization: Basic ...` header value; nothing if the value is
/// not one (another scheme, bad base64, no colon).
std::optional<BasicCredentials> parse_basic_authorization(std::string_view header);

/// A bcrypt hash as htpasswd -B and Go's bcrypt write it: $2a$, $2b$ or $2y$, a cost from 4 to
/// 31, and 53 characters of salt and hash.
bool is_bcrypt_hash(std::string_view hash);

/// Whether `password` hashes to `hash` (bcrypt; slow on purpose). The comparison takes the same
/// time wherever the strings differ. False for a hash that is not bcrypt.
bool bcrypt_matches(const std::string& password, const std::string& hash);

/// A hash that matches no password anyone sends, checked for unknown users so that their
/// refusal takes as long as a wrong password's (the user list cannot be learnt from timings).
extern const std::string kUnknownUserHash;

/// Outcomes of bcrypt checks, keyed by the user, the stored hash (a changed file is a new key)
/// and SHA-256 of the password (the password itself is not kept). The least recently used
/// entry goes first when it is full. Not thread-safe.
class AuthCache {
 public:
  explicit AuthCache(std::size_t capacity) : capacity_(capacity) {}

  using Key = std::string;
  static Key key(std::string_view user, std::string_view hash, std::string_view password);

  std::optional<bool> find(const Key& key);
  void insert(const Key& key, bool matches);
  std::size_t size() const { return entries_.size(); }

 private:
  using Order = std::list<Key>;  // most recently used first
  struct Entry {
    bool matches;
    Order::iterator place;
  };
  std::size_t capacity_;
  Order order_;
  std::unordered_map<Key, Entry> entries_;
};

}  // namespace smtp
