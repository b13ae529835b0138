#include "addon/engine_wrap.h"

#include <algorithm>
#include <cstring>
#include <exception>

#include "addon/js_conversions.h"

namespace heartwatch::addon {
namespace {

// Keys arrive as Uint8Arrays, checked by lib/options.ts. Runs on: JS thread.
std::vector<AuthKey> ToAuthKeys(const Napi::Array& keys) {
  std::vector<AuthKey> out;
  for (uint32_t i = 0; i < keys.Length(); ++i) {
    const Napi::Uint8Array key = keys.Get(i).As<Napi::Uint8Array>();
    out.emplace_back(key.Data(), key.Data() + key.ByteLength());
  }
  return out;
}

// Runs on: JS thread.
void ToTcpConfig(const Napi::Object& tcp, TcpConfig& out) {
  out.enabled = true;
  out.socket.host = tcp.Get("host").As<Napi::String>().Utf8Value();
  out.socket.port = static_cast<uint16_t>(GetUint(tcp, "port"));
  out.socket.backlog = GetUint(tcp, "backlog");
  out.socket.defer_accept_s = GetUint(tcp, "deferAcceptS");
  out.socket.recv_buffer_bytes = GetUint(tcp, "recvBufferBytes");
  out.socket.keepalive_idle_s = GetUint(tcp, "keepAliveIdleS");
  out.socket.keepalive_interval_s = GetUint(tcp, "keepAliveIntervalS");
  out.socket.keepalive_count = GetUint(tcp, "keepAliveCount");
  out.reactors = GetUint(tcp, "reactors");
  out.max_connections = GetUint(tcp, "maxConnections");
  out.max_connections_per_ip = GetUint(tcp, "maxConnectionsPerIp");
  out.handshake_timeout_ms = GetUint(tcp, "handshakeTimeoutMs");
  out.idle_timeout_ms = GetUint(tcp, "idleTimeoutMs");
  out.frame_timeout_ms = GetUint(tcp, "frameTimeoutMs");
  out.close_means_down = tcp.Get("closeMeansDown").As<Napi::Boolean>().Value();
}

// Options arrive validated by lib/options.ts (as numbers for the enums).
// Runs on: JS thread.
EngineConfig ToEngineConfig(const Napi::Object& config) {
  EngineConfig out;
  out.host = config.Get("host").As<Napi::String>().Utf8Value();
  out.port = static_cast<uint16_t>(GetUint(config, "port"));
  out.receivers = GetUint(config, "receivers");
  out.workers = GetUint(config, "workers");
  const Napi::Array cpus = config.Get("cpus").As<Napi::Array>();
  for (uint32_t i = 0; i < cpus.Length(); ++i) {
    out.cpus.push_back(cpus.Get(i).As<Napi::Number>().Int32Value());
  }
  out.identity = static_cast<IdentityMode>(GetUint(config, "identity"));
  out.detector.timeout_ms = GetUint(config, "timeoutMs");
  out.detector.missed_beats = GetUint(config, "missedBeats");
  out.detector.max_hosts = GetUint(config, "maxHosts");
  out.detector.forget_after_ms = GetUint(config, "forgetAfterMs");
  out.detector.index = static_cast<ExpiryIndexKind>(GetUint(config, "expiry"));
  out.batch_size = GetUint(config, "batchSize");
  out.receive_backend = static_cast<ReceiveBackend>(GetUint(config, "receiveBackend"));
  out.recv_buffer_bytes = GetUint(config, "recvBufferBytes");
  out.ring_capacity = GetUint(config, "ringCapacity");
  out.event_ring_capacity = GetUint(config, "eventRingCapacity");
  out.spin = config.Get("spin").As<Napi::Boolean>().Value();
  out.detector.max_status_bytes = GetUint(config, "maxStatusBytes");
  out.detector.status_budget_bytes = static_cast<uint64_t>(config.Get("statusBudgetBytes").As<Napi::Number>().Int64Value());
  out.auth_keys = ToAuthKeys(config.Get("authKeys").As<Napi::Array>());
  out.auth_required = config.Get("authRequired").As<Napi::Boolean>().Value();
  const Napi::Array allow = config.Get("allow").As<Napi::Array>();
  for (uint32_t i = 0; i < allow.Length(); ++i) {
    const Napi::Object entry = allow.Get(i).As<Napi::Object>();
    AddressPrefix prefix{};
    prefix.family = static_cast<uint8_t>(GetUint(entry, "family"));
    prefix.bits = static_cast<uint8_t>(GetUint(entry, "bits"));
    const Napi::Uint8Array address = entry.Get("address").As<Napi::Uint8Array>();
    std::memcpy(prefix.address, address.Data(), std::min<size_t>(address.ByteLength(), sizeof prefix.address));
    out.allow.push_back(prefix);
  }
  const Napi::Value tcp = config.Get("tcp");
  if (tcp.IsObject()) ToTcpConfig(tcp.As<Napi::Object>(), out.tcp);
  return out;
}

}  // namespace

// Called through napi directly rather than Napi::Function::Call: while a worker thread is being
// terminated the call fails, and node-addon-api would turn that failure into a fatal error. A
// JS exception from onWake (a bug: listener errors are caught in TS) is rethrown as uncaught.
void CallOnWake(Napi::Env env, Napi::Function on_wake, std::nullptr_t*, void*) {
  if (env == nullptr || on_wake == nullptr) return;
  napi_value undefined;
  napi_value result;
  napi_get_undefined(env, &undefined);
  if (napi_call_function(env, undefined, on_wake, 0, nullptr, &result) == napi_ok) return;
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (!pending) return;
  napi_value error;
  napi_get_and_clear_last_exception(env, &error);
  napi_fatal_exception(env, error);
}

void EngineWrap::Register(Napi::Env env, Napi::Object exports) {
  Napi::Function constructor = DefineClass(
      env, "NativeEngineHandle",
      {
          InstanceMethod<&EngineWrap::Start>("start"),
          InstanceMethod<&EngineWrap::Drain>("drain"),
          InstanceMethod<&EngineWrap::Post>("post"),
          InstanceMethod<&EngineWrap::DrainResults>("drainResults"),
          InstanceMethod<&EngineWrap::TakeSnapshot>("takeSnapshot"),
          InstanceMethod<&EngineWrap::TakeSnapshotStatuses>("takeSnapshotStatuses"),
          InstanceMethod<&EngineWrap::StatusBytes>("statusBytes"),
          InstanceMethod<&EngineWrap::Close>("close"),
          InstanceMethod<&EngineWrap::SetKeys>("setKeys"),
          InstanceMethod<&EngineWrap::ForeignSockets>("foreignSockets"),
          InstanceAccessor<&EngineWrap::Port>("port"),
          InstanceAccessor<&EngineWrap::TcpPort>("tcpPort"),
          InstanceAccessor<&EngineWrap::TcpReactorCount>("tcpReactorCount"),
          InstanceAccessor<&EngineWrap::ReceiverCount>("receiverCount"),
          InstanceAccessor<&EngineWrap::ReceiveBackends>("receiveBackends"),
          InstanceAccessor<&EngineWrap::ReceiveBackendFallbacks>("receiveBackendFallbacks"),
          InstanceAccessor<&EngineWrap::WorkerCount>("workerCount"),
          InstanceAccessor<&EngineWrap::Cpus>("cpus"),
          InstanceAccessor<&EngineWrap::StatsBuffer>("statsBuffer"),
      });
  exports.Set("NativeEngineHandle", constructor);
}

EngineWrap::EngineWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<EngineWrap>(info), env_(info.Env()) {
  Napi::Env env = info.Env();
  const EngineConfig config = ToEngineConfig(info[0].As<Napi::Object>());
  wake_ = WakeFunction::New(env, info[1].As<Napi::Function>(), "heartwatch-events", 0, 1);
  try {
    // Workers call this; the engine guarantees at most one call is queued until JS drains.
    engine_ = std::make_unique<Engine>(config, [tsfn = wake_]() mutable { tsfn.NonBlockingCall(); });
  } catch (const std::exception&) {
    wake_.Release();
    throw ToJsError(env, std::current_exception());
  }

  auto* hint = new std::shared_ptr<EngineStats>(engine_->shared_stats());
  Napi::ArrayBuffer buffer = Napi::ArrayBuffer::New(
      env, engine_->stats().data(), engine_->stats().byte_length(),
      [](Napi::Env, void*, std::shared_ptr<EngineStats>* owner) { delete owner; }, hint);
  stats_buffer_ = Napi::Persistent(buffer);
  napi_add_env_cleanup_hook(env_, &EngineWrap::CleanupHook, this);
}

EngineWrap::~EngineWrap() {
  if (!closed_) napi_remove_env_cleanup_hook(env_, &EngineWrap::CleanupHook, this);
  Shutdown();
}

void EngineWrap::CleanupHook(void* self) {
  auto* wrap = static_cast<EngineWrap*>(self);
  wrap->closed_ = true;
  wrap->Shutdown();
}

void EngineWrap::Shutdown() {
  if (stopped_) return;
  stopped_ = true;
  engine_->stop();
  wake_.Release();
}

void EngineWrap::Start(const Napi::CallbackInfo& info) {
  if (stopped_) throw Napi::Error::New(info.Env(), "the engine is closed");
  engine_->start();
}

void EngineWrap::SetKeys(const Napi::CallbackInfo& info) {
  if (stopped_) throw Napi::Error::New(info.Env(), "the engine is closed");
  try {
    engine_->set_keys(ToAuthKeys(info[0].As<Napi::Array>()));
  } catch (const std::exception&) {
    throw ToJsError(info.Env(), std::current_exception());
  }
}

Napi::Value EngineWrap::Drain(const Napi::CallbackInfo& info) {
  Napi::Uint8Array buffer = info[0].As<Napi::Uint8Array>();
  engine_->begin_drain();
  const size_t max = buffer.ByteLength() / sizeof(EventRecord);
  const size_t count = engine_->drain_events(reinterpret_cast<EventRecord*>(buffer.Data()), max);
  return Napi::Number::New(info.Env(), static_cast<double>(count));
}

Napi::Value EngineWrap::Post(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (stopped_) return Napi::Boolean::New(env, false);  // no worker would answer
  bool lossless = false;
  WorkerCommand command{};
  command.kind = static_cast<CommandKind>(info[0].As<Napi::Number>().Uint32Value());
  command.key = info[1].As<Napi::BigInt>().Uint64Value(&lossless);
  command.request_id = static_cast<uint64_t>(info[2].As<Napi::Number>().Int64Value());
  command.with_statuses = info.Length() > 4 && info[4].ToBoolean().Value();
  // A remove or a host lookup goes to the key's owner; a snapshot to the worker named, so that
  // a caller asking every worker can retry just those whose command ring was full.
  const uint32_t worker = command.kind != CommandKind::kSnapshot ? engine_->owner_of(command.key)
                                                                 : info[3].As<Napi::Number>().Uint32Value();
  if (worker >= engine_->worker_count()) return Napi::Boolean::New(env, false);
  return Napi::Boolean::New(env, engine_->post(worker, command));
}

Napi::Value EngineWrap::DrainResults(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Array out = Napi::Array::New(env);
  engine_->begin_drain();
  CommandResult results[64];
  uint32_t n = 0;
  size_t got;
  while ((got = engine_->drain_results(results, 64)) > 0) {
    for (size_t i = 0; i < got; ++i) {
      Napi::Array entry = Napi::Array::New(env, 3);
      entry.Set(0u, Napi::Number::New(env, static_cast<double>(results[i].request_id)));
      entry.Set(1u, Napi::Number::New(env, static_cast<double>(results[i].value)));
      entry.Set(2u, Napi::Number::New(env, results[i].worker));
      out.Set(n++, entry);
    }
  }
  return out;
}

Napi::Value EngineWrap::TakeSnapshot(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto records = std::make_unique<std::vector<HostSnapshotRecord>>(
      engine_->worker(info[0].As<Napi::Number>().Uint32Value()).take_snapshot());
  if (records->empty()) return Napi::ArrayBuffer::New(env, 0);
  // The records move into the buffer without a copy; the buffer's finalizer frees them.
  void* data = records->data();
  const size_t bytes = records->size() * sizeof(HostSnapshotRecord);
  return Napi::ArrayBuffer::New(
      env, data, bytes, [](Napi::Env, void*, std::vector<HostSnapshotRecord>* owner) { delete owner; },
      records.release());
}

Napi::Value EngineWrap::TakeSnapshotStatuses(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto bytes = std::make_unique<std::vector<uint8_t>>(
      engine_->worker(info[0].As<Napi::Number>().Uint32Value()).take_snapshot_statuses());
  if (bytes->empty()) return Napi::ArrayBuffer::New(env, 0);
  void* data = bytes->data();
  const size_t size = bytes->size();
  return Napi::ArrayBuffer::New(
      env, data, size, [](Napi::Env, void*, std::vector<uint8_t>* owner) { delete owner; }, bytes.release());
}

// The ring stays alive while JS holds the buffer: the buffer's finalizer drops a reference.
Napi::Value EngineWrap::StatusBytes(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const uint32_t worker = info[0].As<Napi::Number>().Uint32Value();
  if (worker >= engine_->worker_count()) return env.Undefined();
  std::shared_ptr<ByteRing> ring = engine_->worker(worker).event_status_bytes();
  if (!ring) return env.Undefined();
  auto* hint = new std::shared_ptr<ByteRing>(ring);
  return Napi::ArrayBuffer::New(
      env, ring->data(), ring->capacity(), [](Napi::Env, void*, std::shared_ptr<ByteRing>* owner) { delete owner; },
      hint);
}

void EngineWrap::Close(const Napi::CallbackInfo&) {
  if (!closed_) {
    closed_ = true;
    napi_remove_env_cleanup_hook(env_, &EngineWrap::CleanupHook, this);
  }
  Shutdown();
}

Napi::Value EngineWrap::ForeignSockets(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), stopped_ ? 0 : engine_->foreign_sockets());
}

Napi::Value EngineWrap::Port(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), engine_->port());
}

Napi::Value EngineWrap::TcpPort(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), engine_->tcp_port());
}

Napi::Value EngineWrap::TcpReactorCount(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), engine_->tcp_reactor_count());
}

Napi::Value EngineWrap::ReceiverCount(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), engine_->receiver_count());
}

// Each receiver's backend by name, as lib/options.ts spells receiveBackend.
Napi::Value EngineWrap::ReceiveBackends(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Array out = Napi::Array::New(env);
  for (uint32_t r = 0; r < engine_->receiver_count(); ++r) {
    out.Set(r, engine_->receive_backend(r) == ReceiveBackend::kIoUring ? "io_uring" : "recvmmsg");
  }
  return out;
}

// Each receiver's reason for reading with recvmmsg where 'auto' would have used io_uring ('' none).
Napi::Value EngineWrap::ReceiveBackendFallbacks(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Array out = Napi::Array::New(env);
  for (uint32_t r = 0; r < engine_->receiver_count(); ++r) out.Set(r, engine_->receive_backend_fallback(r));
  return out;
}

Napi::Value EngineWrap::WorkerCount(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), engine_->worker_count());
}

Napi::Value EngineWrap::Cpus(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Array out = Napi::Array::New(env);
  uint32_t n = 0;
  for (uint32_t r = 0; r < engine_->receiver_count(); ++r) out.Set(n++, engine_->receiver_cpu(r));
  for (uint32_t w = 0; w < engine_->worker_count(); ++w) out.Set(n++, engine_->worker_cpu(w));
  if (engine_->tcp_port() != 0) {
    for (uint32_t t = 0; t <= engine_->tcp_reactor_count(); ++t) out.Set(n++, engine_->tcp_cpu(t));
  }
  return out;
}

Napi::Value EngineWrap::StatsBuffer(const Napi::CallbackInfo&) { return stats_buffer_.Value(); }

}  // namespace heartwatch::addon
