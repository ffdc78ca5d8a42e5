#include "session/fdsock_codec.h"

#include "absl/strings/str_cat.h"

namespace devmem::fdsock {

absl::Status SendMessage(BorrowedFd sock, const v1::FdMessage& m,
                         absl::Span<const BorrowedFd> fds, int flags) {
  std::string bytes;
  if (!m.SerializeToString(&bytes)) {
    return absl::InternalError("FdMessage does not serialize");
  }
  return SendFrame(sock, bytes, fds, flags);
}

absl::StatusOr<ReceivedMessage> RecvMessage(BorrowedFd sock, size_t max_bytes,
                                            size_t max_fds, int flags) {
  auto frame = RecvFrame(
      sock, {.max_frame_bytes = max_bytes, .max_fds = max_fds}, flags);
  if (!frame.ok()) return frame.status();
  ReceivedMessage out;
  if (frame->eof) {
    out.eof = true;
    return out;
  }
  if (frame->problem != FrameProblem::kNone) {
    return absl::InvalidArgumentError(absl::StrCat(
        "fd socket frame rejected: ",
        std::string(FrameProblemName(frame->problem)), " (", frame->fds.size(),
        " fds, limit ", max_fds, "; limit ", max_bytes, " bytes)"));
  }
  if (!out.message.ParseFromString(frame->data)) {
    return absl::InvalidArgumentError("fd socket frame is not an FdMessage");
  }
  out.fds = std::move(frame->fds);
  return out;
}

absl::Status ErrorToStatus(const v1::Error& e) {
  int code = e.code();
  if (code <= 0 || code > 16)
    code = static_cast<int>(absl::StatusCode::kUnknown);
  return absl::Status(static_cast<absl::StatusCode>(code),
                      e.reason().empty()
                          ? e.message()
                          : absl::StrCat(e.message(), " [", e.reason(), "]"));
}

v1::Error StatusToError(const absl::Status& status, std::string_view reason) {
  v1::Error e;
  e.set_code(static_cast<int>(status.code()));
  e.set_message(std::string(status.message()));
  e.set_reason(std::string(reason));
  return e;
}

}  // namespace devmem::fdsock
