// The addon's entry point: registers every native class and function on the exports object.
#include <napi.h>

#include "addon/engine_wrap.h"
#include "addon/fleet_simulator_wrap.h"
#include "addon/native_info.h"

namespace heartwatch::addon {

// Runs on: JS thread (once per environment: the main thread and each worker thread).
Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("nativeInfo", Napi::Function::New(env, NativeInfo, "nativeInfo"));
  exports.Set("allowedCpus", Napi::Function::New(env, AllowedCpus, "allowedCpus"));
  exports.Set("limits", Limits(env));
  EngineWrap::Register(env, exports);
  RegisterFleetSimulator(env, exports);
  return exports;
}

}  // namespace heartwatch::addon

using heartwatch::addon::Init;
NODE_API_MODULE(heartwatch, Init)
