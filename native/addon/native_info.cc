#include "addon/native_info.h"

#include "core/common/chunk_allocator.h"
#include "core/common/current_thread.h"
#include "core/detector/detector.h"

#ifndef HW_VERSION
#error "HW_VERSION must be defined by the build (binding.gyp passes package.json's version)"
#endif
#define HW_STRINGIFY_INNER(x) #x
#define HW_STRINGIFY(x) HW_STRINGIFY_INNER(x)

namespace heartwatch::addon {
namespace {

// The flags as the compiler saw them, read from its own predefined macros, so the answer
// cannot drift from binding.gyp.
Napi::Object BuildFlags(Napi::Env env) {
  Napi::Object flags = Napi::Object::New(env);
#if defined(__clang__)
  flags.Set("compiler", "clang " __clang_version__);
#elif defined(__GNUC__)
  flags.Set("compiler", "gcc " __VERSION__);
#else
  flags.Set("compiler", "unknown");
#endif
  flags.Set("cplusplus", static_cast<double>(__cplusplus));
#if defined(__OPTIMIZE__)
  flags.Set("optimized", true);
#else
  flags.Set("optimized", false);
#endif
#if defined(NDEBUG)
  flags.Set("assertions", false);
#else
  flags.Set("assertions", true);
#endif
  Napi::Array sanitizers = Napi::Array::New(env);
  uint32_t n = 0;
#if defined(__SANITIZE_ADDRESS__)
  sanitizers.Set(n++, "address");
#endif
#if defined(__SANITIZE_THREAD__)
  sanitizers.Set(n++, "thread");
#endif
  (void)n;
  flags.Set("sanitizers", sanitizers);
  flags.Set("napiVersion", static_cast<double>(NAPI_VERSION));
  return flags;
}

}  // namespace

Napi::Object NativeInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object result = Napi::Object::New(env);
  result.Set("version", HW_STRINGIFY(HW_VERSION));
  result.Set("allocator", ChunkAllocator::backend_name());
  result.Set("buildFlags", BuildFlags(env));
  return result;
}

Napi::Value AllowedCpus(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::vector<int> cpus = allowed_cpus();
  Napi::Array out = Napi::Array::New(env, cpus.size());
  for (uint32_t i = 0; i < cpus.size(); ++i) out.Set(i, cpus[i]);
  return out;
}

Napi::Object Limits(Napi::Env env) {
  Napi::Object limits = Napi::Object::New(env);
  limits.Set("maxHostsPerShard", static_cast<double>(kMaxHostsPerShard));
  limits.Freeze();
  return limits;
}

}  // namespace heartwatch::addon
