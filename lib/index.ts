export type { AddressPrefix } from './auth/allow-list.js';
export type { AuthKeys } from './auth/keys.js';
export type { EngineSink, ListenInfo } from './engine/engine.js';
export {
  type ErrnoName,
  HeartwatchError,
  type HeartwatchErrorCode,
  type HeartwatchOwnCode,
} from './errors.js';
export type {
  DownEvent,
  DownReason,
  HostEvent,
  HostSnapshot,
  HostsQuery,
  RestartEvent,
  StormEvent,
  UpdateEvent,
  UpEvent,
} from './events.js';
export type { HeartwatchEvents } from './heartwatch.js';
export { Heartwatch } from './heartwatch.js';
export type { EventStreamOptions } from './http/event-stream.js';
export type { HttpAddress, HttpApiOptions, HttpSummary } from './http/server.js';
export { HttpApi } from './http/server.js';
export type { LatenessHistogram, TransitionKind } from './metrics/event-tally.js';
export { EventTally } from './metrics/event-tally.js';
export type {
  HeartwatchMetrics,
  MetricsRegistry,
  RegisterMetricsOptions,
} from './metrics/prometheus.js';
export { registerMetrics } from './metrics/prometheus.js';
export type { NativeInfo, NativeUnavailable } from './native/native-info.js';
export { nativeInfo } from './native/native-info.js';
export type {
  HeartwatchOptions,
  Identity,
  ReceiveBackend,
  ResolvedAuth,
  ResolvedOptions,
  StormOptions,
} from './options.js';
export { resolveOptions } from './options.js';
export { hostIdFromName, hostIdFromSource } from './protocol/host-id.js';
export type { DecodedHeartbeat, DecodeResult, HeartbeatFields } from './protocol/wire-v1.js';
export { decodeHeartbeat, encodeHeartbeat } from './protocol/wire-v1.js';
export type { HeartbeatSenderEvents, HeartbeatSenderOptions } from './sender/heartbeat-sender.js';
export { HeartbeatSender } from './sender/heartbeat-sender.js';
export type { FleetKill, FleetReport, FleetRestart, SimulateFleetOptions } from './simulator.js';
export { fleetSimulatorAvailable, simulateFleet } from './simulator.js';
export type { HeartwatchStats, ReceiverStats, StatusStats, WorkerStats } from './stats.js';
