// Names an errno value the way Node's system errors do (EADDRINUSE, EINVAL, ...), on any C library.
#pragma once

namespace heartwatch {

// The symbolic name of `error` (a static string), or nullptr when Linux defines no such value.
// Runs on: any thread (reads a constant table).
const char* errno_name(int error) noexcept;

}  // namespace heartwatch
