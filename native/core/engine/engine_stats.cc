#include "core/engine/engine_stats.h"

#include <new>

#include "core/common/chunk_allocator.h"

namespace heartwatch {

EngineStats::EngineStats(uint32_t receivers, uint32_t workers)
    : receivers_(receivers),
      workers_(workers),
      lines_(static_cast<CounterLine*>(
          ChunkAllocator::allocate(sizeof(CounterLine) * (receivers + workers), 64))) {
  for (uint32_t i = 0; i < receivers + workers; ++i) new (&lines_[i]) CounterLine{};
}

EngineStats::~EngineStats() { ChunkAllocator::release(lines_); }

}  // namespace heartwatch
