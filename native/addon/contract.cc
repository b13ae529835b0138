#include "addon/contract.h"

#include <cstddef>
#include <initializer_list>
#include <utility>

#include "core/auth/key_ring.h"
#include "core/auth/source_allow_list.h"
#include "core/detector/detector.h"
#include "core/detector/host_event.h"
#include "core/detector/peer_address.h"
#include "core/detector/status_store.h"
#include "core/engine/engine_config.h"
#include "core/engine/engine_stats.h"
#include "core/engine/event_record.h"
#include "core/engine/shard_message.h"
#include "core/protocol/heartbeat_parser.h"
#include "sim/fleet_simulator.h"

namespace heartwatch::addon {
namespace {

struct Entry {
  const char* name;
  double value;
};

template <typename E>
constexpr double value_of(E e) noexcept {
  return static_cast<double>(e);
}

Napi::Object Table(Napi::Env env, std::initializer_list<Entry> entries) {
  Napi::Object table = Napi::Object::New(env);
  for (const Entry& entry : entries) table.Set(entry.name, entry.value);
  table.Freeze();
  return table;
}

// Each counter's name in lib/'s stats and its slot in the thread's line. A counter JS shows
// needs its line here and its name in lib/native/contract.ts (counterNames); the two lists
// must match exactly, or the addon does not load.
constexpr std::pair<const char*, ReceiverCounter> kReceiverCounters[] = {
    {"received", ReceiverCounter::kReceived},
    {"malformed", ReceiverCounter::kMalformed},
    {"authUnsupported", ReceiverCounter::kAuthUnsupported},
    {"kernelDrops", ReceiverCounter::kKernelDrops},
    {"ringDrops", ReceiverCounter::kRingDrops},
    {"recvBufferBytes", ReceiverCounter::kRecvBufferBytes},
    {"batches", ReceiverCounter::kBatches},
    {"receiveErrors", ReceiverCounter::kReceiveErrors},
    {"authFailed", ReceiverCounter::kAuthFailed},
    {"unauthenticated", ReceiverCounter::kUnauthenticated},
    {"notAllowed", ReceiverCounter::kNotAllowed},
    {"watermarkMs", ReceiverCounter::kWatermarkMs},
    {"failedErrno", ReceiverCounter::kFailedErrno},
};
constexpr std::pair<const char*, WorkerCounter> kWorkerCounters[] = {
    {"processed", WorkerCounter::kProcessed},
    {"hostsUp", WorkerCounter::kHostsUp},
    {"hostsDown", WorkerCounter::kHostsDown},
    {"trackedHosts", WorkerCounter::kTrackedHosts},
    {"refused", WorkerCounter::kRefused},
    {"eventsTaken", WorkerCounter::kEventsTaken},
    {"eventsPublished", WorkerCounter::kEventsPublished},
    {"forgotten", WorkerCounter::kForgotten},
    {"replayed", WorkerCounter::kReplayed},
    {"expiryWaits", WorkerCounter::kExpiryWaits},
    {"lossyDeferred", WorkerCounter::kLossyDeferred},
    {"uncertainDowns", WorkerCounter::kUncertainDowns},
    {"addressChanges", WorkerCounter::kAddressChanges},
    {"lastMovedKey", WorkerCounter::kLastMovedKey},
};
constexpr std::pair<const char*, TcpAcceptorCounter> kTcpAcceptorCounters[] = {
    {"accepted", TcpAcceptorCounter::kAccepted},
    {"refusedMaxConnections", TcpAcceptorCounter::kRefusedMaxConnections},
    {"refusedPerIp", TcpAcceptorCounter::kRefusedPerIp},
    {"acceptPaused", TcpAcceptorCounter::kAcceptPaused},
    {"handoffWaits", TcpAcceptorCounter::kHandoffWaits},
    {"openConnections", TcpAcceptorCounter::kOpen},
    {"descriptorLimit", TcpAcceptorCounter::kDescriptorLimit},
    {"acceptErrors", TcpAcceptorCounter::kAcceptErrors},
};
constexpr std::pair<const char*, TcpReactorCounter> kTcpReactorCounters[] = {
    {"frames", TcpReactorCounter::kFrames},
    {"protocolErrors", TcpReactorCounter::kProtocolErrors},
    {"authUnsupported", TcpReactorCounter::kAuthUnsupported},
    {"ringDrops", TcpReactorCounter::kRingDrops},
    {"handshakeTimeouts", TcpReactorCounter::kHandshakeTimeouts},
    {"idleTimeouts", TcpReactorCounter::kIdleTimeouts},
    {"slowFrames", TcpReactorCounter::kSlowFrames},
    {"closedByPeer", TcpReactorCounter::kClosedByPeer},
    {"unauthenticated", TcpReactorCounter::kUnauthenticated},
    {"notAllowed", TcpReactorCounter::kNotAllowed},
    {"authFailed", TcpReactorCounter::kAuthFailed},
    {"authSlotsFull", TcpReactorCounter::kAuthSlotsFull},
    {"statusSlotsFull", TcpReactorCounter::kStatusSlotsFull},
};

constexpr std::pair<const char*, StatusCounter> kStatusCounters[] = {
    {"hosts", StatusCounter::kStatuses},
    {"bytes", StatusCounter::kBytes},
    {"oversize", StatusCounter::kOversize},
    {"overBudget", StatusCounter::kOverBudget},
    {"lost", StatusCounter::kLost},
    {"eventsDropped", StatusCounter::kEventsDropped},
};

constexpr size_t kSlotsPerLine = sizeof(CounterLine::values) / sizeof(CounterLine::values[0]);

// Whether every named counter has a slot of its own inside the line.
template <typename E, size_t N>
constexpr bool OwnSlotsInLine(const std::pair<const char*, E> (&names)[N]) {
  for (size_t i = 0; i < N; ++i) {
    if (static_cast<size_t>(names[i].second) >= kSlotsPerLine) return false;
    for (size_t j = 0; j < i; ++j) {
      if (names[j].second == names[i].second) return false;
    }
  }
  return true;
}
static_assert(OwnSlotsInLine(kReceiverCounters) && OwnSlotsInLine(kWorkerCounters) &&
              OwnSlotsInLine(kTcpAcceptorCounters) && OwnSlotsInLine(kTcpReactorCounters) &&
              OwnSlotsInLine(kStatusCounters));

template <typename E, size_t N>
Napi::Object CounterSlots(Napi::Env env, const std::pair<const char*, E> (&names)[N]) {
  Napi::Object table = Napi::Object::New(env);
  for (const auto& [name, slot] : names) table.Set(name, value_of(slot));
  table.Freeze();
  return table;
}

Napi::Object Counters(Napi::Env env) {
  Napi::Object counters = Napi::Object::New(env);
  counters.Set("slotsPerLine", static_cast<double>(kSlotsPerLine));
  counters.Set("receiver", CounterSlots(env, kReceiverCounters));
  counters.Set("worker", CounterSlots(env, kWorkerCounters));
  counters.Set("tcpAcceptor", CounterSlots(env, kTcpAcceptorCounters));
  counters.Set("tcpReactor", CounterSlots(env, kTcpReactorCounters));
  counters.Set("status", CounterSlots(env, kStatusCounters));
  counters.Freeze();
  return counters;
}

Napi::Object EventRecordLayout(Napi::Env env) {
  using R = EventRecord;
  return Table(env, {
                        {"bytes", sizeof(R)},
                        {"key", offsetof(R, key)},
                        {"at", offsetof(R, at_epoch_ms)},
                        {"lastSeen", offsetof(R, last_seen_epoch_ms)},
                        {"incarnation", offsetof(R, incarnation)},
                        {"previousIncarnation", offsetof(R, previous_incarnation)},
                        {"type", offsetof(R, type)},
                        {"reason", offsetof(R, reason)},
                        {"recovered", offsetof(R, recovered)},
                        {"family", offsetof(R, family)},
                        {"port", offsetof(R, port)},
                        {"uncertain", offsetof(R, uncertain)},
                        {"worker", offsetof(R, worker)},
                        {"ip", offsetof(R, ip)},
                        {"ipBytes", sizeof(R::ip)},
                        {"statusEnd", offsetof(R, status_end)},
                        {"statusSize", offsetof(R, status_size)},
                        {"previousSize", offsetof(R, previous_size)},
                        {"timeoutMs", offsetof(R, timeout_ms)},
                    });
}

Napi::Object HostSnapshotRecordLayout(Napi::Env env) {
  using R = HostSnapshotRecord;
  return Table(env, {
                        {"bytes", sizeof(R)},
                        {"key", offsetof(R, key)},
                        {"lastSeen", offsetof(R, last_seen_epoch_ms)},
                        {"incarnation", offsetof(R, incarnation)},
                        {"timeoutMs", offsetof(R, timeout_ms)},
                        {"state", offsetof(R, state)},
                        {"family", offsetof(R, family)},
                        {"port", offsetof(R, port)},
                        {"ip", offsetof(R, ip)},
                        {"ipBytes", sizeof(R::ip)},
                        {"statusSize", offsetof(R, status_size)},
                    });
}

Napi::Object Limits(Napi::Env env) {
  return Table(env, {
                        {"maxHostsPerShard", kMaxHostsPerShard},
                        {"maxTimeoutMs", kMaxOptionTimeoutMs},
                        {"minRingCapacity", kMinRingCapacity},
                        {"maxRingCapacity", kMaxRingCapacity},
                        {"maxBatchSize", kMaxBatchSize},
                        {"maxStatusBytes", kMaxStatusBytes},
                    });
}

Napi::Object Protocol(Napi::Env env) {
  return Table(env, {
                        {"headerBytes", kHeartbeatHeaderBytes},
                        {"authTagBytes", kAuthTagBytes},
                        {"maxUdpPayloadBytes", kMaxUdpPayloadBytes},
                        {"flagLeave", kHeartbeatFlagLeave},
                        {"flagAuth", kHeartbeatFlagAuth},
                    });
}

Napi::Object Auth(Napi::Env env) {
  return Table(env, {
                        {"maxKeys", kMaxAuthKeys},
                        {"minKeyBytes", kMinAuthKeyBytes},
                        {"maxKeyBytes", kMaxAuthKeyBytes},
                        {"maxAllowPrefixes", kMaxAllowPrefixes},
                    });
}

}  // namespace

Napi::Object Contract(Napi::Env env) {
  Napi::Object contract = Napi::Object::New(env);
  contract.Set("eventRecord", EventRecordLayout(env));
  contract.Set("hostSnapshotRecord", HostSnapshotRecordLayout(env));
  contract.Set("counters", Counters(env));
  contract.Set("eventType", Table(env, {{"up", value_of(HostEventType::kUp)},
                                        {"down", value_of(HostEventType::kDown)},
                                        {"restart", value_of(HostEventType::kRestart)},
                                        {"update", value_of(HostEventType::kUpdate)}}));
  contract.Set("downReason", Table(env, {{"none", value_of(DownReason::kNone)},
                                         {"timeout", value_of(DownReason::kTimeout)},
                                         {"left", value_of(DownReason::kLeft)},
                                         {"disconnected", value_of(DownReason::kDisconnected)}}));
  contract.Set("hostSnapshotState", Table(env, {{"up", value_of(HostSnapshotState::kUp)},
                                        {"down", value_of(HostSnapshotState::kDown)}}));
  contract.Set("family", Table(env, {{"unknown", kFamilyUnknown},
                                     {"ipv4", kFamilyIpv4},
                                     {"ipv6", kFamilyIpv6}}));
  contract.Set("identity", Table(env, {{"id", value_of(IdentityMode::kId)},
                                       {"address", value_of(IdentityMode::kAddress)},
                                       {"ip", value_of(IdentityMode::kIp)}}));
  contract.Set("expiry", Table(env, {{"fifo", value_of(ExpiryIndexKind::kFifo)},
                                     {"wheel", value_of(ExpiryIndexKind::kWheel)}}));
  contract.Set("receiveBackend", Table(env, {{"auto", value_of(ReceiveBackend::kAuto)},
                                             {"recvmmsg", value_of(ReceiveBackend::kRecvmmsg)},
                                             {"io_uring", value_of(ReceiveBackend::kIoUring)}}));
  contract.Set("command", Table(env, {{"remove", value_of(CommandKind::kRemove)},
                                      {"snapshot", value_of(CommandKind::kSnapshot)},
                                      {"host", value_of(CommandKind::kHost)}}));
  contract.Set("limits", Limits(env));
  contract.Set("protocol", Protocol(env));
  contract.Set("auth", Auth(env));
  contract.Set("simulator",
               Table(env, {{"maxBatch", sim::kMaxSimulatorBatch},
                           {"minStatusBytes", sim::kMinSimulatorStatusBytes}}));
  contract.Freeze();
  return contract;
}

}  // namespace heartwatch::addon
