// The kernel uAPI for devmem TCP that Debian 12's 6.1 headers lack.
//
// Values come from shared/reference/kernel-devmem.md (include/uapi/linux/
// netdev.h, uio.h and asm-generic/socket.h); each notes the release it first
// appeared in. Only x86-64 / asm-generic socket option numbers are defined:
// parisc, sparc and mips number SO_DEVMEM_* differently, and building for them
// fails loudly below rather than sending the wrong option.
#ifndef DEVMEM_BASE_UAPI_H_
#define DEVMEM_BASE_UAPI_H_

#include <cstdint>

#if defined(__hppa__) || defined(__sparc__) || defined(__mips__)
#error "SO_DEVMEM_* differ on this architecture; add its values to base/uapi.h"
#endif

namespace devmem::uapi {

// ---- Generic netlink family "netdev"
// (Documentation/netlink/specs/netdev.yaml)
inline constexpr char kNetdevFamilyName[] = "netdev";
inline constexpr uint8_t kNetdevFamilyVersion = 1;
inline constexpr char kNetdevMcgrpMgmt[] = "mgmt";
inline constexpr char kNetdevMcgrpPagePool[] = "page-pool";

// Commands (enum starts at 1).
enum NetdevCmd : uint8_t {
  kNetdevCmdDevGet = 1,             // 6.3
  kNetdevCmdDevAddNtf = 2,          // 6.3
  kNetdevCmdDevDelNtf = 3,          // 6.3
  kNetdevCmdDevChangeNtf = 4,       // 6.3
  kNetdevCmdPagePoolGet = 5,        // 6.8
  kNetdevCmdPagePoolAddNtf = 6,     // 6.8
  kNetdevCmdPagePoolDelNtf = 7,     // 6.8
  kNetdevCmdPagePoolChangeNtf = 8,  // 6.8
  kNetdevCmdPagePoolStatsGet = 9,   // 6.8, CONFIG_PAGE_POOL_STATS
  kNetdevCmdQueueGet = 10,          // 6.9
  kNetdevCmdNapiGet = 11,           // 6.9
  kNetdevCmdQstatsGet = 12,         // 6.10 (dump only)
  kNetdevCmdBindRx = 13,            // 6.12 (GENL_ADMIN_PERM)
  kNetdevCmdNapiSet = 14,           // 6.13
  kNetdevCmdBindTx = 15,            // 6.16 (no permission check)
};

// Attribute set "dev".
enum NetdevADev : uint16_t {
  kNetdevADevIfindex = 1,
  kNetdevADevPad = 2,
  kNetdevADevXdpFeatures = 3,
  kNetdevADevXdpZcMaxSegs = 4,
  kNetdevADevXdpRxMetadataFeatures = 5,
  kNetdevADevXskFeatures = 6,
};

// Attribute set "page-pool". uint attributes are 4 or 8 bytes.
enum NetdevAPagePool : uint16_t {
  kNetdevAPagePoolId = 1,
  kNetdevAPagePoolIfindex = 2,
  kNetdevAPagePoolNapiId = 3,
  kNetdevAPagePoolInflight = 4,
  kNetdevAPagePoolInflightMem = 5,
  kNetdevAPagePoolDetachTime = 6,
  kNetdevAPagePoolDmabuf = 7,   // 6.12
  kNetdevAPagePoolIoUring = 8,  // 6.15
};

// Attribute set "queue".
enum NetdevAQueue : uint16_t {
  kNetdevAQueueId = 1,
  kNetdevAQueueIfindex = 2,
  kNetdevAQueueType = 3,
  kNetdevAQueueNapiId = 4,
  kNetdevAQueueDmabuf = 5,   // 6.12
  kNetdevAQueueIoUring = 6,  // 6.15
  kNetdevAQueueXsk = 7,      // 6.15
};

// Enum "queue-type".
enum NetdevQueueType : uint32_t {
  kNetdevQueueTypeRx = 0,
  kNetdevQueueTypeTx = 1,
};

// Attribute set "napi".
enum NetdevANapi : uint16_t {
  kNetdevANapiIfindex = 1,
  kNetdevANapiId = 2,
  kNetdevANapiIrq = 3,
  kNetdevANapiPid = 4,
  kNetdevANapiDeferHardIrqs = 5,
  kNetdevANapiGroFlushTimeout = 6,
  kNetdevANapiIrqSuspendTimeout = 7,
  kNetdevANapiThreaded = 8,
};

// Attribute set "qstats" (6.10). Counters are uint (4 or 8 bytes).
enum NetdevAQstats : uint16_t {
  kNetdevAQstatsIfindex = 1,
  kNetdevAQstatsQueueType = 2,
  kNetdevAQstatsQueueId = 3,
  kNetdevAQstatsScope = 4,
  kNetdevAQstatsRxPackets = 8,
  kNetdevAQstatsRxBytes = 9,
  kNetdevAQstatsTxPackets = 10,
  kNetdevAQstatsTxBytes = 11,
  kNetdevAQstatsRxAllocFail = 12,
  kNetdevAQstatsRxHwDrops = 13,
  kNetdevAQstatsRxHwDropOverruns = 14,
  kNetdevAQstatsTxHwDrops = 24,
  kNetdevAQstatsTxHwDropErrors = 25,
};
inline constexpr uint32_t kNetdevQstatsScopeQueue = 1;

// Attribute set "dmabuf" (bind-rx 6.12, bind-tx 6.16).
enum NetdevADmabuf : uint16_t {
  kNetdevADmabufIfindex = 1,  // u32, min 1
  kNetdevADmabufQueues = 2,   // nest of "queue-id", one per queue, NLA_F_NESTED
  kNetdevADmabufFd = 3,       // u32
  kNetdevADmabufId = 4,       // u32, reply only
};

// Subset "queue-id" used inside kNetdevADmabufQueues: id = 1, type = 3.
inline constexpr uint16_t kNetdevAQueueIdId = kNetdevAQueueId;
inline constexpr uint16_t kNetdevAQueueIdType = kNetdevAQueueType;

// ---- Socket side (asm-generic/socket.h, 6.12) -------------------------------
inline constexpr int kSoDevmemLinear = 78;  // == SCM_DEVMEM_LINEAR
inline constexpr int kSoDevmemDmabuf = 79;  // == SCM_DEVMEM_DMABUF
inline constexpr int kSoDevmemDontneed = 80;
inline constexpr int kScmDevmemLinear = kSoDevmemLinear;
inline constexpr int kScmDevmemDmabuf = kSoDevmemDmabuf;
inline constexpr int kMsgSockDevmem = 0x2000000;  // recvmsg flag
inline constexpr int kSoZerocopy = 60;
inline constexpr int kMsgZerocopy = 0x4000000;
inline constexpr int kSoEeOriginZerocopy = 5;

// SO_DEVMEM_DONTNEED's limits (128 ranges, 1024 frags a call) live with
// the pool's TokenRange: pool/token_range.h.

// struct dmabuf_cmsg (include/uapi/linux/uio.h, 6.12): 24 bytes, RX only.
struct DmabufCmsg {
  uint64_t frag_offset;  // offset of the fragment inside the dmabuf
  uint32_t frag_size;    // fragment length
  uint32_t frag_token;   // token to hand back with SO_DEVMEM_DONTNEED
  uint32_t dmabuf_id;    // binding id the fragment landed in
  uint32_t flags;        // reserved, zero
};
static_assert(sizeof(DmabufCmsg) == 24);

// struct dmabuf_token (uio.h, 6.12): frees [token_start, token_start+count).
struct DmabufToken {
  uint32_t token_start;
  uint32_t token_count;
};
static_assert(sizeof(DmabufToken) == 8);

// ---- ethtool ----------------------------------------------------------------
// ETHTOOL_A_RINGS_TCP_DATA_SPLIT values (6.2).
enum TcpDataSplit : uint8_t {
  kTcpDataSplitUnknown = 0,
  kTcpDataSplitDisabled = 1,
  kTcpDataSplitEnabled = 2,
};

// Ethtool generic-netlink attributes newer than Debian's 6.1
// <linux/ethtool_netlink.h> (include/uapi/linux/ethtool_netlink_generated.h).
// Everything up to ETHTOOL_A_RINGS_TX_PUSH (13) comes from the 6.1 header.
enum EthtoolARings : uint16_t {
  kEthtoolARingsRxPush = 14,           // u8, 6.2
  kEthtoolARingsTxPushBufLen = 15,     // u32, 6.4
  kEthtoolARingsTxPushBufLenMax = 16,  // u32, 6.4
  kEthtoolARingsHdsThresh = 17,        // u32, 6.13
  kEthtoolARingsHdsThreshMax = 18,     // u32, 6.13
};
// ETHTOOL_A_HEADER_PHY_INDEX (6.12); not sent by us, listed so parsers skip it.
inline constexpr uint16_t kEthtoolAHeaderPhyIndex = 4;

}  // namespace devmem::uapi

#endif  // DEVMEM_BASE_UAPI_H_
