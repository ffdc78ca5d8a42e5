// CheckDmabufFd: what the daemon checks on a buffer fd a job handed it, before
// any binding is attempted.
//
// The answer uses the kernel's errnos (through base/errno_status.h, so
// StatusErrno() gives them back), as bind-rx's dma_buf_get() would:
//   * not an open fd                                   -> EBADF
//   * an open fd that is not a buffer (socket, pipe, directory, character
//     device such as /dev/null, eventfd, ...)           -> EINVAL
//   * size 0                                            -> EINVAL
//   * a memfd/shmem file not sealed with F_SEAL_SHRINK, or another regular
//     file (on disk)                                    -> EINVAL: the job
//     could truncate it under the daemon's mapping and turn every write of
//     the simulated NIC into SIGBUS
//   * a host buffer that cannot be mapped read-write    -> mmap's errno
//     (EACCES for an fd opened read-only)
// A real dma-buf is recognised by /proc/self/fdinfo's "exp_name" line (there
// is no DMA_BUF_GET_NAME ioctl in the uAPI; DMA_BUF_SET_NAME only sets it), its
// size comes from lseek(SEEK_END), and being unmappable is not an error for it
// (GPU memory usually is not CPU-mappable: cpu_mappable=false).
//
// The checks are read-only: the fd's offset, flags and seals are unchanged
// (lseek on a dma-buf is restored to 0, which is the only position it has).
//
// Thread safety: thread-safe (it only inspects the fd).
#ifndef DEVMEM_PROVIDERS_COMMON_DMABUF_CHECK_H_
#define DEVMEM_PROVIDERS_COMMON_DMABUF_CHECK_H_

#include "absl/status/statusor.h"
#include "base/unique_fd.h"
#include "providers/provider.h"

namespace devmem {

// DmabufInfo.exporter is the dma-buf exporter's name ("udmabuf",
// "system-heap", a GPU driver's), or "memfd" for a sealed memfd/shmem file.
absl::StatusOr<DmabufInfo> CheckDmabufFd(BorrowedFd fd);

}  // namespace devmem

#endif  // DEVMEM_PROVIDERS_COMMON_DMABUF_CHECK_H_
