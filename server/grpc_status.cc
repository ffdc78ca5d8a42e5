#include "server/grpc_status.h"

namespace devmem::server {

std::string SanitizeMessage(std::string_view message) {
  std::string out;
  out.reserve(std::min(message.size(), kMaxMessageBytes));
  size_t i = 0;
  while (i < message.size()) {
    // A '/' at the start of a word begins an absolute path: drop the word.
    const bool word_start = i == 0 || message[i - 1] == ' ' ||
                            message[i - 1] == '(' || message[i - 1] == '"' ||
                            message[i - 1] == '\'' || message[i - 1] == '=';
    if (message[i] == '/' && word_start) {
      size_t j = i;
      while (j < message.size() && message[j] != ' ' && message[j] != ')' &&
             message[j] != '"' && message[j] != '\'' && message[j] != ':' &&
             message[j] != ',') {
        ++j;
      }
      out += "<path>";
      i = j;
      continue;
    }
    out += message[i++];
  }
  if (out.size() > kMaxMessageBytes) {
    out.resize(kMaxMessageBytes - 3);
    out += "...";
  }
  return out;
}

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  static_assert(static_cast<int>(absl::StatusCode::kUnauthenticated) ==
                static_cast<int>(grpc::StatusCode::UNAUTHENTICATED));
  static_assert(static_cast<int>(absl::StatusCode::kResourceExhausted) ==
                static_cast<int>(grpc::StatusCode::RESOURCE_EXHAUSTED));
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      SanitizeMessage(std::string_view(
                          status.message().data(), status.message().size())));
}

}  // namespace devmem::server
