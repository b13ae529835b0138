// NativeEngineHandle: the JS handle on a core Engine. Options arrive validated by lib/options.ts.
//
// JS surface (used only by lib/engine/native-engine.ts):
//   new NativeEngineHandle(config, onWake) binds sockets; throws Error{code: errno name, syscall}
//   start()                            launches the threads
//   port, receiverCount, workerCount, cpus (number[], -1 = not pinned)
//   statsBuffer                        ArrayBuffer over the live counters (engine_stats.h)
//   drain(Uint8Array) -> records       copies event records (event_record.h)
//   post(kind, key: bigint, requestId, worker, withStatuses?) -> boolean   a command
//                                      (contract.command): remove and host go to the key's
//                                      owner, snapshot to `worker`; false: ring full, retry
//   drainResults() -> [requestId, value, worker][]
//   takeSnapshot(worker) -> ArrayBuffer   HostSnapshotRecords (shard_message.h) of the
//                                      snapshot whose result was just drained; frees the worker
//   takeSnapshotStatuses(worker) -> ArrayBuffer   status bytes of the records just taken, in order
//   statusBytes(worker) -> ArrayBuffer | undefined   the worker's event status ring (event_record.h);
//                                      undefined with statuses off
//   foreignSockets() -> number         UDP sockets on the port that are not this engine's
//   close()                            stops and joins every thread; idempotent. Events still
//                                      queued stay readable with drain() afterwards.
// onWake() runs on the JS thread after a worker published events or results; it is called once
// until the next drain().
#pragma once

#include <napi.h>

#include <memory>

#include "core/engine/engine.h"

namespace heartwatch::addon {

// Runs on: JS thread. Calls onWake(); see engine_wrap.cc for how failures are handled.
void CallOnWake(Napi::Env env, Napi::Function on_wake, std::nullptr_t* context, void* data);
using WakeFunction = Napi::TypedThreadSafeFunction<std::nullptr_t, void, CallOnWake>;

class EngineWrap : public Napi::ObjectWrap<EngineWrap> {
 public:
  static void Register(Napi::Env env, Napi::Object exports);

  // Runs on: JS thread.
  explicit EngineWrap(const Napi::CallbackInfo& info);
  ~EngineWrap() override;

 private:
  // All run on: JS thread.
  void Start(const Napi::CallbackInfo& info);
  Napi::Value Drain(const Napi::CallbackInfo& info);
  Napi::Value Post(const Napi::CallbackInfo& info);
  Napi::Value DrainResults(const Napi::CallbackInfo& info);
  Napi::Value TakeSnapshot(const Napi::CallbackInfo& info);
  Napi::Value TakeSnapshotStatuses(const Napi::CallbackInfo& info);
  Napi::Value StatusBytes(const Napi::CallbackInfo& info);
  void Close(const Napi::CallbackInfo& info);
  // Replaces the key ring (hw.setKeys()); keys validated by lib/options.ts.
  void SetKeys(const Napi::CallbackInfo& info);
  Napi::Value ForeignSockets(const Napi::CallbackInfo& info);
  Napi::Value Port(const Napi::CallbackInfo& info);
  Napi::Value TcpPort(const Napi::CallbackInfo& info);
  Napi::Value TcpReactorCount(const Napi::CallbackInfo& info);
  Napi::Value ReceiverCount(const Napi::CallbackInfo& info);
  Napi::Value ReceiveBackends(const Napi::CallbackInfo& info);
  Napi::Value ReceiveBackendFallbacks(const Napi::CallbackInfo& info);
  Napi::Value WorkerCount(const Napi::CallbackInfo& info);
  Napi::Value Cpus(const Napi::CallbackInfo& info);
  Napi::Value StatsBuffer(const Napi::CallbackInfo& info);

  // Stops the threads and lets the event loop go; safe to call more than once. The engine object
  // (rings, overflow, counters) lives on until this wrapper is collected.
  void Shutdown();
  // Runs on: JS thread, when the environment (main thread or worker) is torn down.
  static void CleanupHook(void* self);

  std::unique_ptr<Engine> engine_;
  WakeFunction wake_;
  Napi::Reference<Napi::ArrayBuffer> stats_buffer_;
  napi_env env_ = nullptr;
  bool closed_ = false;   // the cleanup hook is no longer registered
  bool stopped_ = false;  // the threads are joined and the wake-up function released
};

}  // namespace heartwatch::addon
