#include "core/engine/engine_stats.h"

#include <new>

#include "core/common/chunk_allocator.h"

namespace heartwatch {

EngineStats::EngineStats(uint32_t receivers, uint32_t workers, uint32_t tcp_reactors)
    : receivers_(receivers),
      workers_(workers),
      tcp_reactors_(tcp_reactors),
      lines_(static_cast<CounterLine*>(
          ChunkAllocator::allocate(sizeof(CounterLine) * (line_count() + workers), 64))) {
  for (uint32_t i = 0; i < line_count() + workers; ++i) new (&lines_[i]) CounterLine{};
}

EngineStats::~EngineStats() { ChunkAllocator::release(lines_); }

}  // namespace heartwatch
