// How a producer (a UDP receiver or a TCP reactor) hands a heartbeat's status to the worker that
// owns the host, without allocating and without making plain beats pay: the bytes go into the
// (producer, worker) ByteRing while the message is staged, and the message names them by size
// and end (ShardMessage). The worker reads them when it applies the message and releases them
// after its batch (ShardWorker::apply).
//
// A status longer than the limit travels as its size alone (the detector counts it oversize); one
// that finds no room in the ring is lost and counted by the worker (kStatusLost), and the beat
// still counts for liveness. Bytes of messages the worker's ring then refused are taken back.
//
// Runs on: the producer's thread (receiver or reactor).
#pragma once

#include <cstdint>
#include <cstring>
#include <vector>

#include "core/engine/shard_message.h"
#include "core/ring/byte_ring.h"

namespace heartwatch {

class StatusCarrier {
 public:
  // `rings[w]` is this producer's ring towards worker w; none, or a limit of 0, turns statuses off.
  // Runs on: JS thread, before the producer starts.
  void attach(std::vector<ByteRing*> rings, uint32_t max_status_bytes) {
    rings_ = std::move(rings);
    max_status_bytes_ = rings_.empty() ? 0 : max_status_bytes;
  }
  bool enabled() const noexcept { return max_status_bytes_ != 0; }

  // Notes the status of `size` bytes in `message`, bound for `worker`: its first `head_size`
  // bytes at `head` and the rest at `rest`. `readable` false: the bytes are not all at hand.
  void carry(uint32_t worker, ShardMessage& message, uint32_t size, const uint8_t* head, size_t head_size,
             const uint8_t* rest, bool readable) noexcept {
    if (size == 0 || !enabled()) return;
    message.status_size = static_cast<uint16_t>(size);
    if (size > max_status_bytes_) return;
    uint8_t* run = readable ? rings_[worker]->reserve(size) : nullptr;
    if (run == nullptr) {
      message.status_flags |= kStatusLost;
      return;
    }
    const size_t first = head_size < size ? head_size : size;
    std::memcpy(run, head, first);
    if (first < size && rest != nullptr) std::memcpy(run + first, rest, size - first);
    message.status_flags |= kStatusCarried;
    message.status_end = static_cast<uint32_t>(rings_[worker]->end());
  }

  // After a push took `pushed` of the `staged` messages bound for `worker`, takes back the bytes
  // of the rest: they follow every byte of the pushed ones.
  void unwind(uint32_t worker, const ShardMessage* messages, size_t staged, size_t pushed) noexcept {
    if (!enabled()) return;
    for (size_t i = pushed; i < staged; ++i) {
      if ((messages[i].status_flags & kStatusCarried) == 0) continue;
      ByteRing& ring = *rings_[worker];
      ring.rewind(ring.widen_tail(messages[i].status_end) - messages[i].status_size);
      return;
    }
  }

 private:
  std::vector<ByteRing*> rings_;
  uint32_t max_status_bytes_ = 0;
};

}  // namespace heartwatch
