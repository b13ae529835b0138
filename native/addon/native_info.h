// nativeInfo(): what this compiled addon is. The JS loader adds how it was found (prebuild or
// source build) and the package version it expected.
#pragma once

#include <napi.h>

namespace heartwatch::addon {

// Runs on: JS thread.
Napi::Object NativeInfo(const Napi::CallbackInfo& info);

// allowedCpus(): the CPUs this process may run on (sched_getaffinity), ascending; read on every
// call, since the mask can change. Options default and check `cpus` against it.
// Runs on: JS thread.
Napi::Value AllowedCpus(const Napi::CallbackInfo& info);

// The `limits` export: the native engine's limits, defined once in the core (frozen object).
// Runs on: JS thread.
Napi::Object Limits(Napi::Env env);

}  // namespace heartwatch::addon
