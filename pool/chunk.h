// Chunk: a value handle naming one fixed-size piece of a Region.
//
// A Chunk is (region id, index): never a pointer. Device memory must not be
// pretended to be host memory (the lesson of the kernel's net_iov/netmem_ref),
// so turning a Chunk into bytes goes through Region::CpuAddress(), which is
// empty for memory the CPU cannot map.
//
// Tokens: a chunk lent to a user is named by its token, which is the chunk's
// index; token -> chunk is an array lookup.
#ifndef DEVMEM_POOL_CHUNK_H_
#define DEVMEM_POOL_CHUNK_H_

#include <cstdint>
#include <functional>

namespace devmem {

struct Chunk {
  uint32_t region = 0;  // Region::id(); 0 is never a valid region
  uint32_t index = 0;   // chunk number inside the region

  friend bool operator==(const Chunk&, const Chunk&) = default;
  template <typename H>
  friend H AbslHashValue(H h, const Chunk& c) {
    return H::combine(std::move(h), c.region, c.index);
  }
};
static_assert(sizeof(Chunk) == 8);

// The token a chunk is lent under: its index.
using Token = uint32_t;

// Who borrows a chunk as a token (a binding's data path, a socket).
// 0 means "nobody".
using BorrowerId = uint32_t;

}  // namespace devmem

#endif  // DEVMEM_POOL_CHUNK_H_
