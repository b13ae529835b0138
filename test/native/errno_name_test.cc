// errno_name() names every errno value the way glibc's strerrorname_np() does, without calling it
// (it is glibc-only), and names nothing it does not know.
#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "core/common/errno_name.h"
#include "core/common/system_error.h"

namespace heartwatch {
namespace {

TEST(ErrnoName, NamesTheErrorsTheEngineReports) {
  EXPECT_STREQ(errno_name(EADDRINUSE), "EADDRINUSE");
  EXPECT_STREQ(errno_name(EINVAL), "EINVAL");
  EXPECT_STREQ(errno_name(EACCES), "EACCES");
  EXPECT_STREQ(errno_name(ENOBUFS), "ENOBUFS");
  EXPECT_STREQ(errno_name(ECONNREFUSED), "ECONNREFUSED");
  EXPECT_STREQ(errno_name(EAGAIN), "EAGAIN");
  EXPECT_STREQ(errno_name(EOPNOTSUPP), "EOPNOTSUPP");
}

TEST(ErrnoName, UnknownValuesHaveNoName) {
  EXPECT_EQ(errno_name(0), nullptr);
  EXPECT_EQ(errno_name(-1), nullptr);
  EXPECT_EQ(errno_name(4095), nullptr);
}

TEST(ErrnoName, SystemErrorCarriesTheName) {
  const SystemError error(EADDRINUSE, "bind", "127.0.0.1:9");
  EXPECT_STREQ(error.code(), "EADDRINUSE");
  EXPECT_NE(std::string(error.what()).find("bind 127.0.0.1:9: EADDRINUSE ("), std::string::npos);
  EXPECT_STREQ(SystemError(4095, "recvmmsg", "fd 3").code(), "EUNKNOWN");
}

#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
// Where glibc has strerrorname_np(), the table agrees with it on every value it names.
TEST(ErrnoName, AgreesWithGlibc) {
  int named = 0;
  for (int error = 1; error < 512; ++error) {
    const char* glibc = strerrorname_np(error);
    const char* ours = errno_name(error);
    if (glibc == nullptr) {
      EXPECT_EQ(ours, nullptr) << "errno " << error;
      continue;
    }
    ASSERT_NE(ours, nullptr) << "errno " << error << " (" << glibc << ")";
    EXPECT_STREQ(ours, glibc) << "errno " << error;
    ++named;
  }
  EXPECT_GE(named, 130);
}
#endif

}  // namespace
}  // namespace heartwatch
