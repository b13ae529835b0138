// The receive backend the engine's receiving tests run with: CTest runs each of those tests once
// as it is (recvmmsg) and once with HEARTWATCH_RECEIVE_BACKEND=io_uring (CMakeLists.txt), so both
// backends pass the same tests. An io_uring run where the kernel refuses io_uring fails, as the
// engine does when asked for 'io_uring' there.
#pragma once

#include <cstdlib>
#include <cstring>

#include "core/engine/engine_config.h"

namespace heartwatch {

inline ReceiveBackend test_receive_backend() {
  const char* wanted = std::getenv("HEARTWATCH_RECEIVE_BACKEND");
  return wanted != nullptr && std::strcmp(wanted, "io_uring") == 0 ? ReceiveBackend::kIoUring
                                                                    : ReceiveBackend::kRecvmmsg;
}

}  // namespace heartwatch
