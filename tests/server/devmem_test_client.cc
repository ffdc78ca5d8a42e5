// A small job for the multi-process tests: speaks the fd socket and the gRPC
// API as a separate process (possibly under another uid).
//
//   devmem_test_client hold RUN_DIR NUM_QUEUES   bind RX, print "BOUND <id>",
//                                                 wait until stdin closes
//   devmem_test_client session RUN_DIR           print "OK <uid>" or "ERR ..."
//   devmem_test_client probe RUN_DIR ID          print what this uid sees of
//                                                 binding ID and may do to it
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "client/dmabuf/dmabuf.h"
#include "devmem/v1/devmem.grpc.pb.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "session/fdsock_client.h"

namespace {

using devmem::fdsock::FdSessionClient;
namespace v1 = devmem::v1;

int Usage() {
  std::fprintf(stderr, "usage: devmem_test_client hold|session|probe ...\n");
  return 2;
}

void Auth(grpc::ClientContext* ctx, const FdSessionClient& s) {
  for (const auto& [k, v] : s.Metadata()) ctx->AddMetadata(k, v);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) return Usage();
  const std::string cmd = argv[1];
  const std::string dir = argv[2];
  auto session = FdSessionClient::Connect(dir + "/fd.sock", "test-client");
  if (!session.ok()) {
    std::printf("ERR %d %s\n", static_cast<int>(session.status().code()),
                std::string(session.status().message()).c_str());
    return 0;
  }
  auto& s = **session;
  if (cmd == "session") {
    std::printf("OK %u\n", s.welcome().uid());
    return 0;
  }
  auto stub = v1::Devmem::NewStub(grpc::CreateChannel(
      "unix:" + dir + "/api.sock", grpc::InsecureChannelCredentials()));
  if (cmd == "hold" && argc == 4) {
    auto buf = devmem::Dmabuf::CreateMemfd("hold", 1 << 20);
    if (!buf.ok()) return 1;
    auto t = s.RegisterDmabuf(buf->fd());
    if (!t.ok()) return 1;
    v1::BindRequest req;
    req.set_ticket(t->ticket());
    req.set_device("sim0");
    uint32_t n = 1;
    (void)absl::SimpleAtoi(argv[3], &n);
    req.mutable_rx()->set_num_queues(n);
    grpc::ClientContext ctx;
    Auth(&ctx, s);
    v1::BindResponse resp;
    grpc::Status st = stub->Bind(&ctx, req, &resp);
    if (!st.ok()) {
      std::printf("ERR %d %s\n", st.error_code(), st.error_message().c_str());
      std::fflush(stdout);
      return 0;
    }
    std::printf("BOUND %u\n", resp.binding().id());
    std::fflush(stdout);
    char c;
    while (::read(0, &c, 1) > 0) {
    }
    return 0;
  }
  if (cmd == "probe" && argc == 4) {
    uint32_t id = 0;
    (void)absl::SimpleAtoi(argv[3], &id);
    v1::ListBindingsResponse list;
    {
      grpc::ClientContext ctx;
      Auth(&ctx, s);
      stub->ListBindings(&ctx, {}, &list);
    }
    v1::GetBindingRequest g;
    g.set_binding_id(id);
    v1::GetBindingResponse gr;
    grpc::ClientContext gctx;
    Auth(&gctx, s);
    const int get = stub->GetBinding(&gctx, g, &gr).error_code();
    v1::UnbindRequest u;
    u.set_binding_id(id);
    v1::UnbindResponse ur;
    grpc::ClientContext uctx;
    Auth(&uctx, s);
    const int unbind = stub->Unbind(&uctx, u, &ur).error_code();
    std::printf("MINE %d OTHER %u GET %d UNBIND %d\n", list.bindings_size(),
                list.other_active(), get, unbind);
    return 0;
  }
  return Usage();
}
