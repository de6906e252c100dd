#include "exporter/web_auth.h"

#include <gtest/gtest.h>

#include <string>

namespace smtp {
namespace {

// "user" / "pass", cost 10 (python3 crypt; htpasswd -nbBC 10 writes the same form with $2y$).
const std::string kHash = "$2b$10$8CC72ysHEeiRUOp40VfFG.UK61B4UNfuNBBWLxkcDFHC1XD7knivW";

TEST(ParseBasicAuthorization, UserAndPassword) {
  // "user:pass"
  const auto credentials = parse_basic_authorization("Basic dXNlcjpwYXNz");
  ASSERT_TRUE(credentials);
  EXPECT_EQ(credentials->user, "user");
  EXPECT_EQ(credentials->password, "pass");
}

TEST(ParseBasicAuthorization, SchemeIsCaseInsensitiveAndPasswordMayHoldColons) {
  // "a:b:c" (padding "=")
  const auto credentials = parse_basic_authorization("bAsIc  YTpiOmM=");
  ASSERT_TRUE(credentials);
  EXPECT_EQ(credentials->user, "a");
  EXPECT_EQ(credentials->password, "b:c");
  // "u:" (padding "==")
  const auto empty = parse_basic_authorization("Basic dTo=");
  ASSERT_TRUE(empty);
  EXPECT_EQ(empty->user, "u");
  EXPECT_EQ(empty->password, "");
}

TEST(ParseBasicAuthorization, RefusesWhatIsNotBasicCredentials) {
  EXPECT_FALSE(parse_basic_authorization(""));
  EXPECT_FALSE(parse_basic_authorization("Basic"));
  EXPECT_FALSE(parse_basic_authorization("Basic "));
  EXPECT_FALSE(parse_basic_authorization("Bearer dXNlcjpwYXNz"));
  EXPECT_FALSE(parse_basic_authorization("Basic dXNlcjpwYXN"));   // not whole quads
  EXPECT_FALSE(parse_basic_authorization("Basic dXNl*jpwYXNz"));  // not base64
  EXPECT_FALSE(parse_basic_authorization("Basic dXNlcg=="));      // "user": no colon
}

TEST(IsBcryptHash, Forms) {
  EXPECT_TRUE(is_bcrypt_hash(kHash));
  EXPECT_TRUE(is_bcrypt_hash("$2y$10$X0h1gDsPszWURQaxFh.zoubFi6DXncSjhoQNJgRrnGs7EsimhC7zG"));
  EXPECT_TRUE(is_bcrypt_hash("$2a$04$X0h1gDsPszWURQaxFh.zoubFi6DXncSjhoQNJgRrnGs7EsimhC7zG"));
  EXPECT_FALSE(is_bcrypt_hash(""));
  EXPECT_FALSE(is_bcrypt_hash("secret"));
  EXPECT_FALSE(is_bcrypt_hash("$2x$10$X0h1gDsPszWURQaxFh.zoubFi6DXncSjhoQNJgRrnGs7EsimhC7zG"));
  EXPECT_FALSE(is_bcrypt_hash("$2y$03$X0h1gDsPszWURQaxFh.zoubFi6DXncSjhoQNJgRrnGs7EsimhC7zG"));
  EXPECT_FALSE(is_bcrypt_hash("$2y$32$X0h1gDsPszWURQaxFh.zoubFi6DXncSjhoQNJgRrnGs7EsimhC7zG"));
  EXPECT_FALSE(is_bcrypt_hash("$2y$10$X0h1gDsPszWURQaxFh.zoubFi6DXncSjhoQNJgRrnGs7EsimhC7z"));
  EXPECT_FALSE(is_bcrypt_hash("$2y$10$X0h1gDsPszWURQaxFh.zoubFi6DXncSjhoQNJgRrnGs7EsimhC7z!"));
  EXPECT_FALSE(is_bcrypt_hash("$6$saltsalt$X0h1gDsPszWURQaxFh.zoubFi6DXncSjhoQNJgRrnGs7Esim"));
}

TEST(BcryptMatches, RightAndWrongPasswords) {
  EXPECT_TRUE(bcrypt_matches("pass", kHash));
  EXPECT_FALSE(bcrypt_matches("Pass", kHash));
  EXPECT_FALSE(bcrypt_matches("", kHash));
  EXPECT_FALSE(bcrypt_matches("pass", "secret"));
  // The $2y$ spelling that htpasswd writes is the same algorithm.
  std::string y = kHash;
  y[2] = 'y';
  EXPECT_TRUE(bcrypt_matches("pass", y));
}

TEST(BcryptMatches, UnknownUserHashMatchesNoUsualPassword) {
  ASSERT_TRUE(is_bcrypt_hash(kUnknownUserHash));
  EXPECT_FALSE(bcrypt_matches("", kUnknownUserHash));
  EXPECT_FALSE(bcrypt_matches("pass", kUnknownUserHash));
}

TEST(AuthCache, KeysSeparateUserHashAndPassword) {
  const auto key = AuthCache::key("user", kHash, "pass");
  EXPECT_EQ(key, AuthCache::key("user", kHash, "pass"));
  EXPECT_NE(key, AuthCache::key("user2", kHash, "pass"));
  EXPECT_NE(key, AuthCache::key("user", kUnknownUserHash, "pass"));
  EXPECT_NE(key, AuthCache::key("user", kHash, "pass2"));
  // The password is not kept in the key.
  EXPECT_EQ(key.find("pass"), std::string::npos);
}

TEST(AuthCache, RemembersOutcomes) {
  AuthCache cache(4);
  const auto right = AuthCache::key("user", kHash, "pass");
  const auto wrong = AuthCache::key("user", kHash, "nope");
  EXPECT_FALSE(cache.find(right));
  cache.insert(right, true);
  cache.insert(wrong, false);
  EXPECT_EQ(cache.find(right), true);
  EXPECT_EQ(cache.find(wrong), false);
  EXPECT_EQ(cache.size(), 2u);
}

TEST(AuthCache, BoundedDroppingTheLeastRecentlyUsed) {
  AuthCache cache(2);
  const auto a = AuthCache::key("a", kHash, "p");
  const auto b = AuthCache::key("b", kHash, "p");
  const auto c = AuthCache::key("c", kHash, "p");
  cache.insert(a, true);
  cache.insert(b, true);
  EXPECT_TRUE(cache.find(a));  // a is now the most recently used
  cache.insert(c, false);
  EXPECT_EQ(cache.size(), 2u);
  EXPECT_TRUE(cache.find(a));
  EXPECT_FALSE(cache.find(b));
  EXPECT_EQ(cache.find(c), false);
}

}  // namespace
}  // namespace smtp
