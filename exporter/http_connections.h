#pragma once
/// The HTTP server's book of its open connections, without any I/O: which wait for a request and
/// in what order (whom to evict at the connection cap), which write a response, and the bytes
/// those responses pin (whom to close when that is too much). The server does the closing.
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <unordered_map>
#include <vector>

#include "exporter/http_observer.h"

namespace smtp {

class ConnectionTable {
 public:
  using Id = std::uint64_t;

  /// `max_pinned_bytes`: the most bytes the bodies of unfinished responses may hold, a body that
  /// several connections write counted once.
  explicit ConnectionTable(std::size_t max_pinned_bytes) : max_pinned_bytes_(max_pinned_bytes) {}

  /// A new connection, waiting for its first request: the newest in the waiting line.
  Id add();
  /// Forgets a connection; a second call (after evict_idlest() or start_write() named it) is a
  /// no-op.
  void remove(Id id);
  std::size_t size() const { return entries_.size(); }
  bool contains(Id id) const { return entries_.contains(id); }

  /// The connection waits for another request: it goes to the end of the waiting line.
  void wait_for_request(Id id);
  /// The first bytes of the request it waits for arrived; its place in line stays.
  void request_begun(Id id);
  /// It has a complete request, being handled: it leaves the waiting line.
  void handle_request(Id id);

  /// The connection writes a response whose body is `bytes` bytes at `body` (null: no body).
  /// Returns the writers to close so that the pinned bytes fit the bound again: those that
  /// started writing first, never `id` itself. They are removed from the table already.
  std::vector<Id> start_write(Id id, const void* body, std::size_t bytes);
  /// Its write ended, done or failed: its body is no longer pinned by it.
  void end_write(Id id);

  struct Eviction {
    Id id;
    HttpEviction why;
  };
  /// Makes room for a new connection: removes and returns the connection that has waited
  /// longest for a request; nothing if every connection is handling or answering a request.
  std::optional<Eviction> evict_idlest();

  /// The bytes of response bodies held by unfinished writes, each body once.
  std::size_t pinned_bytes() const { return pinned_bytes_; }

 private:
  enum class Stage { kWaiting, kHandling, kWriting };
  struct Entry {
    Stage stage = Stage::kWaiting;
    std::uint64_t order = 0;  // place in the waiting line, or in the writers' line
    bool begun = false;       // waiting: some bytes of the request arrived
    const void* body = nullptr;
  };
  struct Pin {
    std::size_t bytes = 0;
    std::size_t writers = 0;
  };

  /// Takes the connection out of the line of its stage, and unpins its body.
  void leave_stage(Entry& entry);

  const std::size_t max_pinned_bytes_;
  std::unordered_map<Id, Entry> entries_;
  std::map<std::uint64_t, Id> waiting_;  // oldest first
  std::map<std::uint64_t, Id> writers_;  // oldest first
  std::unordered_map<const void*, Pin> pins_;
  std::size_t pinned_bytes_ = 0;
  std::uint64_t next_order_ = 0;
  Id next_id_ = 0;
};

}  // namespace smtp
