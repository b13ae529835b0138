// A failed system call, carried as its errno name (EADDRINUSE, EINVAL, ...) and the call's name,
// so the JS side can raise an error whose `code` users switch on.
#pragma once

#include <cstring>
#include <stdexcept>
#include <string>

#include "core/common/errno_name.h"

namespace heartwatch {

class SystemError : public std::runtime_error {
 public:
  SystemError(int error, const char* syscall, const std::string& detail)
      : std::runtime_error(build_message(error, syscall, detail)), error_(error), syscall_(syscall) {}

  int error() const noexcept { return error_; }
  const char* syscall() const noexcept { return syscall_; }
  const char* code() const noexcept {
    const char* name = errno_name(error_);
    return name != nullptr ? name : "EUNKNOWN";
  }

 private:
  static std::string build_message(int error, const char* syscall, const std::string& detail) {
    const char* name = errno_name(error);
    return std::string(syscall) + " " + detail + ": " + (name != nullptr ? name : "EUNKNOWN") + " (" +
           std::strerror(error) + ")";
  }

  int error_;
  const char* syscall_;
};

}  // namespace heartwatch
