#include "base/errno_status.h"

#include <cerrno>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace devmem {
namespace {

TEST(StatusText, AnErrnoNameIsNotFollowedByTheCodeName) {
  EXPECT_EQ(StatusText(ErrnoToStatus(EINVAL, "bind sim0: the dmabuf: size 0")),
            "bind sim0: the dmabuf: size 0: Invalid argument (EINVAL)");
  EXPECT_EQ(StatusText(ErrnoToStatus(kEtoosmall, "recvmsg")),
            "recvmsg: control buffer too small (ETOOSMALL)");
  EXPECT_EQ(StatusText(ErrnoToStatus(4000, "x")),
            absl::StrCat("x: ", std::strerror(4000), " (errno 4000)"));
  // As it arrives over gRPC: the text only, no errno payload.
  EXPECT_EQ(StatusText(absl::InvalidArgumentError(
                "eth1 queue 3: bind-rx: Invalid argument (EINVAL)")),
            "eth1 queue 3: bind-rx: Invalid argument (EINVAL)");
}

TEST(StatusText, OtherwiseTheCodeNameSaysWhatKindOfFailure) {
  EXPECT_EQ(StatusText(absl::PermissionDeniedError("uid 1000 is not allowed")),
            "uid 1000 is not allowed (PERMISSION_DENIED)");
  EXPECT_EQ(StatusText(absl::NotFoundError("binding 7 (of this session)")),
            "binding 7 (of this session) (NOT_FOUND)");
  EXPECT_EQ(StatusText(absl::InvalidArgumentError("queues (Eh)")),
            "queues (Eh) (INVALID_ARGUMENT)");
  EXPECT_EQ(StatusText(absl::UnavailableError("")), "UNAVAILABLE");
  EXPECT_EQ(StatusText(absl::OkStatus()), "OK");
}

}  // namespace
}  // namespace devmem
