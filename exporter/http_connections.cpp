#include "exporter/http_connections.h"

namespace smtp {

ConnectionTable::Id ConnectionTable::add() {
  const Id id = next_id_++;
  Entry& entry = entries_[id];
  entry.order = next_order_++;
  waiting_.emplace(entry.order, id);
  return id;
}

void ConnectionTable::remove(Id id) {
  const auto it = entries_.find(id);
  if (it == entries_.end()) return;
  leave_stage(it->second);
  entries_.erase(it);
}

void ConnectionTable::wait_for_request(Id id) {
  const auto it = entries_.find(id);
  if (it == entries_.end()) return;
  Entry& entry = it->second;
  leave_stage(entry);
  entry = Entry{Stage::kWaiting, next_order_++, false, nullptr};
  waiting_.emplace(entry.order, id);
}

void ConnectionTable::request_begun(Id id) {
  const auto it = entries_.find(id);
  if (it != entries_.end() && it->second.stage == Stage::kWaiting) it->second.begun = true;
}

void ConnectionTable::handle_request(Id id) {
  const auto it = entries_.find(id);
  if (it == entries_.end()) return;
  leave_stage(it->second);
  it->second.stage = Stage::kHandling;
}

std::vector<ConnectionTable::Id> ConnectionTable::start_write(Id id, const void* body,
                                                              std::size_t bytes) {
  std::vector<Id> to_close;
  const auto it = entries_.find(id);
  if (it == entries_.end()) return to_close;
  Entry& entry = it->second;
  leave_stage(entry);
  entry = Entry{Stage::kWriting, next_order_++, false, bytes == 0 ? nullptr : body};
  writers_.emplace(entry.order, id);
  if (entry.body == nullptr) return to_close;
  Pin& pin = pins_[entry.body];
  if (pin.writers++ == 0) {
    pin.bytes = bytes;
    pinned_bytes_ += bytes;
  }
  // Oldest first: the writers of the oldest page go first, and the page is freed when the last
  // of them has gone. A writer of this same body frees nothing, nor does one without a body.
  auto writer = writers_.begin();
  while (pinned_bytes_ > max_pinned_bytes_ && writer != writers_.end()) {
    const Id victim = writer->second;
    ++writer;  // before remove() erases it
    const Entry& other = entries_.at(victim);
    if (victim == id || other.body == nullptr || other.body == entry.body) continue;
    remove(victim);
    to_close.push_back(victim);
  }
  return to_close;
}

void ConnectionTable::end_write(Id id) {
  const auto it = entries_.find(id);
  if (it == entries_.end() || it->second.stage != Stage::kWriting) return;
  leave_stage(it->second);
  it->second.stage = Stage::kHandling;
}

std::optional<ConnectionTable::Eviction> ConnectionTable::evict_idlest() {
  if (waiting_.empty()) return std::nullopt;
  const Id id = waiting_.begin()->second;
  const HttpEviction why =
      entries_.at(id).begun ? HttpEviction::kIncompleteRequest : HttpEviction::kIdle;
  remove(id);
  return Eviction{id, why};
}

void ConnectionTable::leave_stage(Entry& entry) {
  switch (entry.stage) {
    case Stage::kWaiting:
      waiting_.erase(entry.order);
      break;
    case Stage::kWriting:
      writers_.erase(entry.order);
      if (entry.body != nullptr) {
        const auto pin = pins_.find(entry.body);
        if (--pin->second.writers == 0) {
          pinned_bytes_ -= pin->second.bytes;
          pins_.erase(pin);
        }
        entry.body = nullptr;
      }
      break;
    case Stage::kHandling:
      break;
  }
}

}  // namespace smtp
