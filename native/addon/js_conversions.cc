#include "addon/js_conversions.h"

#include <stdexcept>

#include "core/common/system_error.h"

namespace heartwatch::addon {

Napi::Error ToJsError(Napi::Env env, const std::exception_ptr& failure) {
  try {
    std::rethrow_exception(failure);
  } catch (const SystemError& error) {
    Napi::Error js = Napi::Error::New(env, error.what());
    js.Set("code", error.code());
    js.Set("syscall", error.syscall());
    js.Set("errno", Napi::Number::New(env, -error.error()));
    return js;
  } catch (const std::invalid_argument& error) {
    Napi::Error js = Napi::Error::New(env, error.what());
    js.Set("code", "ERR_HW_INVALID_OPTION");
    return js;
  } catch (const std::exception& error) {
    return Napi::Error::New(env, error.what());
  }
}

uint32_t GetUint(const Napi::Object& object, const char* name) {
  return object.Get(name).As<Napi::Number>().Uint32Value();
}

}  // namespace heartwatch::addon
