// Lets a worker sleep when it has nothing to do and be woken by a receiver that just handed it
// heartbeats, without a syscall on the receiver's side unless the worker is actually asleep.
//
// Protocol: the worker announces it is about to sleep (prepare_wait), checks its inputs once more,
// then waits on the epoch it read. A producer publishes its input first, then calls notify(),
// which bumps the epoch and issues FUTEX_WAKE only when a sleeper was announced. Both sides use
// sequentially consistent operations on `sleeping_` so neither can miss the other's write; the
// wait's timeout additionally bounds the latency of any wake-up.
#pragma once

#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>

namespace heartwatch {

class WakeSignal {
 public:
  // Runs on: the sleeping (worker) thread. Returns the epoch to pass to wait().
  uint32_t prepare_wait() noexcept {
    const uint32_t epoch = epoch_.load(std::memory_order_acquire);
    sleeping_.store(true, std::memory_order_seq_cst);
    return epoch;
  }

  // Sleeps until notify() changes the epoch or `timeout_ns` passes.
  // Runs on: the sleeping (worker) thread.
  void wait(uint32_t epoch, uint64_t timeout_ns) noexcept {
    timespec timeout{static_cast<time_t>(timeout_ns / 1'000'000'000u),
                     static_cast<long>(timeout_ns % 1'000'000'000u)};
    syscall(SYS_futex, reinterpret_cast<uint32_t*>(&epoch_), FUTEX_WAIT_PRIVATE, epoch, &timeout,
            nullptr, 0);
    sleeping_.store(false, std::memory_order_relaxed);
  }

  // Cancels a prepare_wait() when the re-check found work.
  // Runs on: the sleeping (worker) thread.
  void cancel_wait() noexcept { sleeping_.store(false, std::memory_order_relaxed); }

  // Runs on: any producer thread, after publishing its input.
  void notify() noexcept {
    if (!sleeping_.load(std::memory_order_seq_cst)) return;
    epoch_.fetch_add(1, std::memory_order_release);
    syscall(SYS_futex, reinterpret_cast<uint32_t*>(&epoch_), FUTEX_WAKE_PRIVATE, 1, nullptr,
            nullptr, 0);
  }

 private:
  static_assert(sizeof(std::atomic<uint32_t>) == sizeof(uint32_t));
  alignas(64) std::atomic<uint32_t> epoch_{0};
  std::atomic<bool> sleeping_{false};
};

}  // namespace heartwatch
