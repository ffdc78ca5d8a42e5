// RETURN_IF_ERROR and ASSIGN_OR_RETURN for absl::Status / absl::StatusOr.
//
// Debian 12's Abseil (20220623) ships neither, so this is the one local
// definition every folder uses.
//
//   RETURN_IF_ERROR(DoThing());
//   ASSIGN_OR_RETURN(UniqueFd fd, OpenThing());
#ifndef DEVMEM_BASE_STATUS_MACROS_H_
#define DEVMEM_BASE_STATUS_MACROS_H_

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define DEVMEM_STATUS_CONCAT_INNER_(a, b) a##b
#define DEVMEM_STATUS_CONCAT_(a, b) DEVMEM_STATUS_CONCAT_INNER_(a, b)

#define RETURN_IF_ERROR(expr)                        \
  do {                                               \
    ::absl::Status devmem_status_ = (expr);          \
    if (!devmem_status_.ok()) return devmem_status_; \
  } while (0)

#define DEVMEM_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, rexpr) \
  auto tmp = (rexpr);                                  \
  if (!tmp.ok()) return std::move(tmp).status();       \
  lhs = std::move(tmp).value()

#define ASSIGN_OR_RETURN(lhs, rexpr) \
  DEVMEM_ASSIGN_OR_RETURN_IMPL_(     \
      DEVMEM_STATUS_CONCAT_(devmem_statusor_, __LINE__), lhs, rexpr)

#endif  // DEVMEM_BASE_STATUS_MACROS_H_
