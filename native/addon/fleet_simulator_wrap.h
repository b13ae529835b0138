// runFleetSimulator(): the native fleet simulator (native/sim) for tests, benchmarks and the demo.
// Options arrive validated by lib/simulator.ts.
//
// JS surface:
//   runFleetSimulator(config) -> { done: Promise<report>, stop(): void }
//     config: { address, port, hosts, firstHostId: bigint, packetsPerSecond, durationMs,
//               intervalMs, payloadBytes, batch, cpu (-1 = not pinned), firstSeq, seed,
//               kills: [{ firstHost, hostCount, atMs, graceful }],
//               restarts: [{ firstHost, hostCount, atMs }] }
//     Throws synchronously when the simulator cannot be set up: Error{code: errno name, syscall}
//     from a failed system call, Error{code: 'ERR_HW_INVALID_OPTION'} for a bad address.
//     The run goes on its own thread; `done` settles when it ends (duration, stop() or the
//     environment shutting down) with
//       { packetsSent, leavesSent, sendErrors, errorsByErrno: [name, count][], startMs, elapsedMs,
//         achievedPacketsPerSecond, stoppedEarly, kills: [{ atMs, lastSendMs: number[] }],
//         restartAtMs: number[] }
//     where times are CLOCK_MONOTONIC milliseconds (Number(process.hrtime.bigint()) / 1e6 reads
//     the same clock) and NaN means "did not happen". It rejects with Error{code, syscall} if the
//     thread cannot be pinned to `cpu`.
//   stop() may be called any number of times, before or after the run ends.
#pragma once

#include <napi.h>

namespace heartwatch::addon {

// Runs on: JS thread (once per environment).
void RegisterFleetSimulator(Napi::Env env, Napi::Object exports);

}  // namespace heartwatch::addon
