// Daemon: devmemd assembled. Owns the Broker, the fd socket, the gRPC server
// (devmem.v1.Devmem, grpc.health.v1, reflection) on <run_dir>/api.sock and an
// optional read-only TCP listener, the Prometheus exposer and the
// housekeeping thread. server/main.cc builds one from flags; tests build one
// in-process with any Provider.
//
// Thread safety: Start, Stop and Reload must not race each other; the
// accessors are safe once Start returned.
//
// Ownership: the Daemon owns the Provider; it is destroyed after every
// binding is released.
#ifndef DEVMEM_SERVER_DAEMON_H_
#define DEVMEM_SERVER_DAEMON_H_

#include <memory>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "devmem/v1/config.pb.h"
#include "grpcpp/server.h"
#include "providers/provider.h"
#include "server/broker.h"
#include "server/clock.h"
#include "server/fd_server.h"
#include "server/metrics.h"
#include "server/service.h"

namespace devmem::server {

class Daemon {
 public:
  // `config` must have passed ApplyDefaults and ValidateConfig. `clock` must
  // outlive the daemon.
  Daemon(std::unique_ptr<Provider> provider, v1::DaemonConfig config,
         Clock* clock = Clock::Real());
  ~Daemon();  // Stop()

  // Creates the run dir (0755) and the sockets, starts every server.
  absl::Status Start();
  // Releases every binding (sessions closed, NIC restored), stops serving,
  // and reports what it released and what is still draining (also logged
  // as devmemd_stopped). Idempotent: later calls report nothing.
  ShutdownReport Stop();
  // Applies allowlist and quotas from `config`; nothing else changes.
  void Reload(const v1::DaemonConfig& config);

  Broker& broker() { return *broker_; }
  Metrics& metrics() { return *metrics_; }
  int metrics_port() const { return metrics_port_; }
  std::string api_socket() const { return config_.run_dir() + "/api.sock"; }
  std::string fd_socket() const { return config_.run_dir() + "/fd.sock"; }
  // A channel to the gRPC server without a socket (tests).
  std::shared_ptr<grpc::Channel> InProcessChannel();

 private:
  void HousekeepingLoop();

  std::unique_ptr<Provider> provider_;
  v1::DaemonConfig config_;
  Clock* const clock_;
  std::unique_ptr<Broker> broker_;
  std::unique_ptr<Metrics> metrics_;
  std::unique_ptr<DevmemService> service_;
  std::unique_ptr<FdServer> fd_server_;
  std::unique_ptr<grpc::Server> grpc_;
  int metrics_port_ = 0;
  std::thread housekeeping_;
  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool started_ = false;
};

}  // namespace devmem::server

#endif  // DEVMEM_SERVER_DAEMON_H_
