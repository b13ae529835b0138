#include "addon/fleet_simulator_wrap.h"

#include <pthread.h>

#include <cstring>
#include <exception>
#include <memory>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "addon/js_conversions.h"
#include "core/common/errno_name.h"
#include "core/common/system_error.h"
#include "sim/fleet_simulator.h"

namespace heartwatch::addon {
namespace {

using sim::FleetSimulator;

struct FleetRun;
using FleetRunRef = std::shared_ptr<FleetRun>;

void Settle(Napi::Env env, Napi::Function, void*, FleetRunRef* pending);
using DoneFunction = Napi::TypedThreadSafeFunction<void, FleetRunRef, Settle>;

// One simulator run. Owned jointly by the pending completion (until JS settles the promise) and
// the environment cleanup hook (until the run is settled or the environment goes away), so it
// outlives its thread on every path; stop() only holds a weak reference.
struct FleetRun {
  explicit FleetRun(Napi::Env env) : deferred(Napi::Promise::Deferred::New(env)) {}

  std::unique_ptr<FleetSimulator> simulator;
  std::thread thread;
  FleetSimulator::Report report;
  std::exception_ptr failure;
  Napi::Promise::Deferred deferred;
  DoneFunction done;
  FleetRunRef* hook_ref = nullptr;  // non-null while the cleanup hook is registered
};

// The conversions below all run on: JS thread.

FleetSimulator::Config ToConfig(const Napi::Object& js) {
  FleetSimulator::Config config;
  config.address = js.Get("address").As<Napi::String>().Utf8Value();
  config.port = static_cast<uint16_t>(GetUint(js, "port"));
  config.hosts = GetUint(js, "hosts");
  bool lossless = true;
  config.first_host_id = js.Get("firstHostId").As<Napi::BigInt>().Uint64Value(&lossless);
  config.packets_per_second = js.Get("packetsPerSecond").As<Napi::Number>().DoubleValue();
  config.duration_ms = GetUint(js, "durationMs");
  config.interval_ms = GetUint(js, "intervalMs");
  config.payload_bytes = static_cast<uint16_t>(GetUint(js, "payloadBytes"));
  config.batch = GetUint(js, "batch");
  config.cpu = js.Get("cpu").As<Napi::Number>().Int32Value();
  config.first_seq = GetUint(js, "firstSeq");
  config.seed = GetUint(js, "seed");
  const Napi::Value key = js.Get("key");
  if (key.IsTypedArray()) {
    const Napi::Uint8Array bytes = key.As<Napi::Uint8Array>();
    config.key.assign(bytes.Data(), bytes.Data() + bytes.ByteLength());
  }
  const Napi::Array kills = js.Get("kills").As<Napi::Array>();
  for (uint32_t i = 0; i < kills.Length(); ++i) {
    const Napi::Object kill = kills.Get(i).As<Napi::Object>();
    config.kills.push_back({GetUint(kill, "firstHost"), GetUint(kill, "hostCount"),
                            GetUint(kill, "atMs"),
                            kill.Get("graceful").As<Napi::Boolean>().Value()});
  }
  const Napi::Array restarts = js.Get("restarts").As<Napi::Array>();
  for (uint32_t i = 0; i < restarts.Length(); ++i) {
    const Napi::Object restart = restarts.Get(i).As<Napi::Object>();
    config.restarts.push_back(
        {GetUint(restart, "firstHost"), GetUint(restart, "hostCount"), GetUint(restart, "atMs")});
  }
  config.tcp = js.Get("tcp").As<Napi::Boolean>().Value();
  config.long_gap_ms = GetUint(js, "longGapMs");
  config.status_host_stride = GetUint(js, "statusHostStride");
  config.status_bytes = static_cast<uint16_t>(GetUint(js, "statusBytes"));
  config.status_change_every = GetUint(js, "statusChangeEvery");
  return config;
}

Napi::Array ToJsArray(Napi::Env env, const std::vector<double>& values) {
  Napi::Array array = Napi::Array::New(env, values.size());
  for (uint32_t i = 0; i < values.size(); ++i) array.Set(i, values[i]);
  return array;
}

Napi::Object ToJsReport(Napi::Env env, const FleetSimulator::Report& report) {
  Napi::Object js = Napi::Object::New(env);
  js.Set("packetsSent", static_cast<double>(report.packets_sent));
  js.Set("leavesSent", static_cast<double>(report.leaves_sent));
  js.Set("sendErrors", static_cast<double>(report.send_errors));
  Napi::Array errors = Napi::Array::New(env, report.errors_by_errno.size());
  for (uint32_t i = 0; i < report.errors_by_errno.size(); ++i) {
    const auto [error, count] = report.errors_by_errno[i];
    const char* name = heartwatch::errno_name(error);
    Napi::Array pair = Napi::Array::New(env, 2);
    pair.Set(0u, name != nullptr ? std::string(name) : "errno " + std::to_string(error));
    pair.Set(1u, static_cast<double>(count));
    errors.Set(i, pair);
  }
  js.Set("errorsByErrno", errors);
  js.Set("startMs", report.start_ms);
  js.Set("elapsedMs", report.elapsed_ms);
  js.Set("achievedPacketsPerSecond", report.achieved_packets_per_second);
  js.Set("stoppedEarly", report.stopped_early);
  Napi::Array kills = Napi::Array::New(env, report.kills.size());
  for (uint32_t i = 0; i < report.kills.size(); ++i) {
    Napi::Object kill = Napi::Object::New(env);
    kill.Set("atMs", report.kills[i].at_ms);
    kill.Set("lastSendMs", ToJsArray(env, report.kills[i].last_send_ms));
    kills.Set(i, kill);
  }
  js.Set("kills", kills);
  js.Set("restartAtMs", ToJsArray(env, report.restart_at_ms));
  Napi::Array gaps = Napi::Array::New(env, report.long_gaps.size());
  for (uint32_t i = 0; i < report.long_gaps.size(); ++i) {
    Napi::Object gap = Napi::Object::New(env);
    gap.Set("host", report.long_gaps[i].host);
    gap.Set("gapMs", report.long_gaps[i].gap_ms);
    gap.Set("endedMs", report.long_gaps[i].ended_ms);
    gaps.Set(i, gap);
  }
  js.Set("longGaps", gaps);
  return js;
}

// Runs on: JS thread, when the environment (main thread or a worker) is torn down with a run
// still going: ends the run and joins its thread so nothing outlives the environment.
void CleanupHook(void* arg) {
  auto* hook_ref = static_cast<FleetRunRef*>(arg);
  const FleetRunRef run = *hook_ref;
  delete hook_ref;
  run->hook_ref = nullptr;
  run->simulator->stop();
  if (run->thread.joinable()) run->thread.join();
}

// Runs on: JS thread, once the run's thread has handed its result over; or with a null env when
// the environment is torn down first, only to free `pending`.
void Settle(Napi::Env env, Napi::Function, void*, FleetRunRef* pending) {
  const FleetRunRef run = std::move(*pending);
  delete pending;
  if (static_cast<napi_env>(env) == nullptr) return;
  run->thread.join();
  if (run->hook_ref != nullptr) {
    napi_remove_env_cleanup_hook(env, CleanupHook, run->hook_ref);
    delete run->hook_ref;
    run->hook_ref = nullptr;
  }
  if (run->failure) {
    run->deferred.Reject(ToJsError(env, run->failure).Value());
  } else {
    run->deferred.Resolve(ToJsReport(env, run->report));
  }
}

// Runs on: the run's own thread (named hw-fleet-sim).
void RunOnThread(FleetRun* run, FleetRunRef* pending) {
  pthread_setname_np(pthread_self(), "hw-fleet-sim");
  try {
    run->report = run->simulator->run();
  } catch (...) {
    run->failure = std::current_exception();
  }
  // Settle() may free `run` as soon as the call is queued, so use a copy of the handle.
  DoneFunction done = run->done;
  if (done.BlockingCall(pending) != napi_ok) delete pending;
  done.Release();
}

// Runs on: JS thread.
Napi::Value RunFleetSimulator(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto run = std::make_shared<FleetRun>(env);
  try {
    run->simulator = std::make_unique<FleetSimulator>(ToConfig(info[0].As<Napi::Object>()));
  } catch (const Napi::Error&) {
    throw;
  } catch (const std::exception&) {
    throw ToJsError(env, std::current_exception());
  }

  run->done = DoneFunction::New(env, "heartwatch-fleet-simulator", 0, 1);
  // Registered after the threadsafe function, so at teardown it runs first (hooks run in reverse
  // order) and the thread is joined while the function can still take its last call.
  run->hook_ref = new FleetRunRef(run);
  napi_add_env_cleanup_hook(env, CleanupHook, run->hook_ref);
  auto* pending = new FleetRunRef(run);
  try {
    run->thread = std::thread(RunOnThread, run.get(), pending);
  } catch (const std::system_error& error) {
    delete pending;
    napi_remove_env_cleanup_hook(env, CleanupHook, run->hook_ref);
    delete run->hook_ref;
    run->hook_ref = nullptr;
    run->done.Release();
    throw ToJsError(env, std::make_exception_ptr(SystemError(
                             error.code().value(), "pthread_create", "for the fleet simulator")));
  }

  Napi::Object result = Napi::Object::New(env);
  result.Set("done", run->deferred.Promise());
  const std::weak_ptr<FleetRun> weak = run;
  result.Set("stop", Napi::Function::New(
                         env,
                         [weak](const Napi::CallbackInfo&) {
                           if (const FleetRunRef live = weak.lock()) live->simulator->stop();
                         },
                         "stop"));
  return result;
}

}  // namespace

void RegisterFleetSimulator(Napi::Env env, Napi::Object exports) {
  exports.Set("runFleetSimulator",
              Napi::Function::New(env, RunFleetSimulator, "runFleetSimulator"));
}

}  // namespace heartwatch::addon
