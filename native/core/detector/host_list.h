// Circular doubly-linked lists threaded through HostEntry::prev/next.
//
// Every list has a sentinel record of its own (allocated from the same pool, never kLive), so
// linking and unlinking never branch on "first" or "last", and a record can be unlinked in O(1)
// without knowing which list holds it. After an unlink, prev == next means that list is now
// empty and prev is its sentinel.
#pragma once

#include <cstdint>

#include "core/detector/host_entry.h"
#include "core/detector/slab_pool.h"

namespace heartwatch {

class HostList {
 public:
  // Makes `sentinel` an empty list. Runs on: worker thread.
  static void init(const SlabPool& pool, uint32_t sentinel) {
    HostEntry& s = pool.get<HostEntry>(sentinel);
    s.prev = sentinel;
    s.next = sentinel;
  }

  static bool empty(const SlabPool& pool, uint32_t sentinel) {
    return pool.get<HostEntry>(sentinel).next == sentinel;
  }

  // First record of the list, or the sentinel itself when empty.
  static uint32_t front(const SlabPool& pool, uint32_t sentinel) {
    return static_cast<uint32_t>(pool.get<HostEntry>(sentinel).next);
  }

  // Runs on: worker thread.
  static void push_back(const SlabPool& pool, uint32_t sentinel, uint32_t index) {
    HostEntry& s = pool.get<HostEntry>(sentinel);
    HostEntry& r = pool.get<HostEntry>(index);
    const uint32_t last = static_cast<uint32_t>(s.prev);
    r.prev = last;
    r.next = sentinel;
    pool.get<HostEntry>(last).next = index;
    s.prev = index;
  }

  // Unlinks `index`. Returns the sentinel of its list when that list is now empty, else 0.
  // Runs on: worker thread.
  static uint32_t unlink(const SlabPool& pool, uint32_t index) {
    HostEntry& r = pool.get<HostEntry>(index);
    const uint32_t prev = static_cast<uint32_t>(r.prev);
    const uint32_t next = static_cast<uint32_t>(r.next);
    pool.get<HostEntry>(prev).next = next;
    pool.get<HostEntry>(next).prev = prev;
    return prev == next ? prev : kNoIndex;
  }
};

}  // namespace heartwatch
