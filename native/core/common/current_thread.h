// Naming and pinning the calling thread, as every engine thread does first.
#pragma once

#include <pthread.h>
#include <sched.h>

#include <string>
#include <vector>

namespace heartwatch {

// Names the calling thread (top -H, gdb and perf show it; Linux keeps 15 characters) and pins it
// to `cpu` when cpu >= 0. Returns 0, or the error of pthread_setaffinity_np; the engine checks
// its CPUs against the process's affinity mask before any thread starts, so that is not expected.
// Runs on: the thread being set up.
inline int name_and_pin_current_thread(const std::string& name, int cpu) noexcept {
  pthread_setname_np(pthread_self(), name.c_str());
  if (cpu < 0) return 0;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  return pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

// The CPUs the calling thread may run on, ascending: the process's affinity mask (taskset, a
// container's cpuset) unless this thread changed its own. Empty when the mask cannot be read.
// Runs on: any thread.
inline std::vector<int> allowed_cpus() {
  std::vector<int> cpus;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) != 0) return cpus;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (CPU_ISSET(cpu, &set)) cpus.push_back(cpu);
  }
  return cpus;
}

}  // namespace heartwatch
