// Fixed layout of the fast path's linear memory. Everything below MEMORY_END
// (asconfig memoryBase is above it) is ours: the AssemblyScript runtime is the stub
// and never allocates there, so the native addon can hold raw pointers into it.

export const CONFIG: u32 = 64; // see config.ts
export const TALLY: u32 = 512; // u32 per output channel: packets of the last batch
export const COUNTERS: u32 = 1024; // COUNTER_COUNT u64 counters
export const COUNTER_COUNT: u32 = 64;
export const DESC_SIZE: u32 = 24;
export const DESC_IN: u32 = 8192; // MAX_IN descriptors: what the native side received
export const MAX_IN: u32 = 256;
export const DESC_OUT: u32 = 32768; // MAX_OUT descriptors: what the fast path sends
export const MAX_OUT: u32 = 4096;
export const ROUTES: u32 = 1 << 20; // ROUTE_CAP route records of ROUTE_SIZE bytes
export const ROUTE_SIZE: u32 = 16;
export const ROUTE_CAP: u32 = 65536;
export const SLOTS: u32 = 2 << 20; // receive slots (headroom + packet)
export const SLOTS_BYTES: u32 = 16 << 20;
export const ARENA: u32 = 18 << 20; // per-batch output space: segments, coalesced packets
export const ARENA_BYTES: u32 = 16 << 20;
export const SCRATCH: u32 = 34 << 20; // scratch for benchmarks (random addresses)
export const SCRATCH_BYTES: u32 = 2 << 20;
export const LPM_ROOT: u32 = 36 << 20; // 65536 u32 entries (stride 16)
export const LPM_NODES: u32 = LPM_ROOT + (65536 << 2); // child nodes of 256 u32 entries
export const LPM_NODE_CAP: u32 = 49152;
// Open-addressing set of known node addresses, filled to half: 32768 nodes (Kubernetes
// and Calico stop at 5000; 4096 slots, as it had, refused a 2049th node).
export const NODES: u32 = LPM_NODES + (LPM_NODE_CAP << 10);
export const NODES_CAP: u32 = 65536; // power of two
export const MEMORY_END: u32 = NODES + (NODES_CAP << 2);
// asconfig.json memoryBase must be >= MEMORY_END (checked by a unit test).

// Descriptor fields (must match weft_desc in router/native/weft_native.c).
export const D_OFF: u32 = 0;
export const D_LEN: u32 = 4;
export const D_ADDR: u32 = 8;
export const D_PORT: u32 = 12;
export const D_CHANNEL: u32 = 14;
export const D_REASON: u32 = 15;
export const D_GSO: u32 = 16; // receive: UDP GRO segment size; send: length of the tail
export const D_FLAGS: u32 = 18;
export const D_TAIL: u32 = 20; // send: offset of the tail (0 = none)
// A sent packet is [off, off + len - tail length) followed by the tail: a segment's
// payload stays where the TUN read put it and only its headers are written.

// Output channels: where the native side sends a descriptor after a batch.
export const CH_DROP: u8 = 0;
export const CH_TUN: u8 = 1;
export const CH_IPIP: u8 = 2;
export const CH_VXLAN: u8 = 3; // the first of VXLAN_SOCKETS_MAX channels, one per source port
export const VXLAN_SOCKETS_MAX: u32 = 8;
export const CHANNELS: u32 = 2 + VXLAN_SOCKETS_MAX; // TUN, IPIP, VXLAN x 8

// Encapsulation of a route record.
export const ENCAP_NONE: u8 = 0;
export const ENCAP_IPIP: u8 = 1;
export const ENCAP_VXLAN: u8 = 2;
