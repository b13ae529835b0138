#include "core/common/chunk_allocator.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace heartwatch {
namespace {

TEST(ChunkAllocator, BackendMatchesEnvironment) {
  const char* choice = std::getenv("HEARTWATCH_ALLOCATOR");
  if (choice != nullptr && std::strcmp(choice, "system") == 0) {
    EXPECT_EQ(ChunkAllocator::backend(), AllocatorBackend::kSystem);
    EXPECT_STREQ(ChunkAllocator::backend_name(), "system");
  } else {
    EXPECT_TRUE(std::strcmp(ChunkAllocator::backend_name(), "system") == 0 ||
                std::strcmp(ChunkAllocator::backend_name(), "tcmalloc") == 0);
  }
}

TEST(ChunkAllocator, BlocksAreZeroedAlignedAndWritable) {
  for (std::size_t bytes : {std::size_t{1}, std::size_t{64}, std::size_t{4097},
                            std::size_t{3} << 20}) {
    for (std::size_t alignment : {std::size_t{16}, std::size_t{64}, std::size_t{4096}}) {
      auto* block = static_cast<unsigned char*>(ChunkAllocator::allocate(bytes, alignment));
      ASSERT_NE(block, nullptr);
      EXPECT_EQ(reinterpret_cast<std::uintptr_t>(block) % alignment, 0u);
      for (std::size_t i = 0; i < bytes; i += 997) EXPECT_EQ(block[i], 0);
      std::memset(block, 0xAB, bytes);
      ChunkAllocator::release(block);
    }
  }
}

TEST(ChunkAllocator, HugeBlocksAreAlignedToHugePages) {
  void* block = ChunkAllocator::allocate(std::size_t{4} << 20);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(block) % (std::size_t{2} << 20), 0u);
  ChunkAllocator::release(block);
}

TEST(ChunkAllocator, ManyBlocksRoundTrip) {
  std::vector<void*> blocks;
  for (int i = 0; i < 1000; ++i) blocks.push_back(ChunkAllocator::allocate(256 + i));
  for (void* block : blocks) ChunkAllocator::release(block);
  ChunkAllocator::release(nullptr);
}

}  // namespace
}  // namespace heartwatch
