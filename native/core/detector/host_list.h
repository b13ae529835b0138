// Circular doubly-linked lists threaded through HostEntry::prev/next.
//
// Every list has a sentinel record of its own (allocated from the same pool, never kLive), so
// linking and unlinking never branch on "first" or "last", and a record can be unlinked in O(1)
// without knowing which list holds it. After an unlink, prev == next means that list is now
// empty and prev is its sentinel.
//
// Each operation comes in two forms: on a SlabPool, and on the pool's record array (`records`,
// from HostList::records()), for loops that store into records: a HostEntry store may alias the
// pool's base pointer, so get() reloads it after each one, where a local array base stays in a
// register.
#pragma once

#include <cstdint>

#include "core/detector/host_entry.h"
#include "core/detector/slab_pool.h"

namespace heartwatch {

class HostList {
 public:
  // The pool's records as an array indexed by record index (index 0 is reserved, never used).
  static HostEntry* records(const SlabPool& pool) { return &pool.get<HostEntry>(0); }

  // Makes `sentinel` an empty list. Runs on: worker thread.
  static void init(const SlabPool& pool, uint32_t sentinel) { init(records(pool), sentinel); }
  static void init(HostEntry* records, uint32_t sentinel) {
    records[sentinel].prev = sentinel;
    records[sentinel].next = sentinel;
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
    push_back(records(pool), sentinel, index);
  }
  static void push_back(HostEntry* records, uint32_t sentinel, uint32_t index) {
    HostEntry& s = records[sentinel];
    HostEntry& r = records[index];
    const uint32_t last = static_cast<uint32_t>(s.prev);
    r.prev = last;
    r.next = sentinel;
    records[last].next = index;
    s.prev = index;
  }

  // Puts the chain first..last (linked by next, last's next unused) in front of the list's
  // records. Runs on: worker thread.
  static void push_front_chain(HostEntry* records, uint32_t sentinel, uint32_t first, uint32_t last) {
    HostEntry& s = records[sentinel];
    const uint32_t old_first = static_cast<uint32_t>(s.next);
    records[first].prev = sentinel;
    records[last].next = old_first;
    records[old_first].prev = last;
    s.next = first;
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
