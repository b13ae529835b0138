// Conversions shared by the addon's wrappers.
#pragma once

#include <napi.h>

#include <cstdint>
#include <exception>

namespace heartwatch::addon {

// A native failure as a JS Error: a SystemError carries its errno name as `code` (as Node's own
// system errors do), `syscall` and `errno`; std::invalid_argument gets ERR_HW_INVALID_OPTION.
// Runs on: JS thread.
Napi::Error ToJsError(Napi::Env env, const std::exception_ptr& failure);

// A u32 property of an options object that lib/ has already validated.
// Runs on: JS thread.
uint32_t GetUint(const Napi::Object& object, const char* name);

}  // namespace heartwatch::addon
