/**
 * Limits that hold for both engines, and that option checks need whether or not the addon loads.
 * The native core defines each (native/core/engine/engine_config.h); the addon exports them as
 * `contract.limits`, and the addon does not load (`ERR_HW_NATIVE_UNAVAILABLE`) unless they equal
 * these (lib/native/contract.ts).
 */
export const engineLimits = {
  /**
   * The longest timeout, about 4 h 39 min: the native detector keeps timeouts in 24 bits, less
   * one millisecond its workers add against clock rounding. Longer announced intervals are capped
   * here, by both engines.
   */
  maxTimeoutMs: 2 ** 24 - 2,
  /** Slots per ring: a power of two in this range. */
  minRingCapacity: 2 ** 10,
  maxRingCapacity: 2 ** 24,
  /** Datagrams per `recvmmsg` call: the kernel takes at most 1024 (UIO_MAXIOV). */
  maxBatchSize: 1024,
  /** The longest status: a v1 payload's length is a u16 (status_store.h). */
  maxStatusBytes: 65_535,
} as const;

/**
 * The native fleet simulator's limits (native/sim/fleet_simulator.h), checked against the addon's
 * `contract.simulator` at load like the engine's: options are checked before the addon is needed.
 */
export const simulatorLimits = {
  /** Datagrams per `sendmmsg` call: the kernel takes at most 1024 (UIO_MAXIOV). */
  maxBatch: 1024,
  /** The shortest status: its stamp, the host id (u64) and the change count (u32). */
  minStatusBytes: 12,
} as const;
