// virtio_net_hdr (virtio spec 5.1.6), in front of every TUN packet with IFF_VNET_HDR.
// Fields are little-endian (legacy virtio on a little-endian host).
export const FLAGS: u32 = 0;
export const GSO_TYPE: u32 = 1;
export const HDR_LEN: u32 = 2;
export const GSO_SIZE: u32 = 4;
export const CSUM_START: u32 = 6;
export const CSUM_OFFSET: u32 = 8;
export const LEN: u32 = 10;

export const F_NEEDS_CSUM: u8 = 1;
export const GSO_NONE: u8 = 0;
export const GSO_TCPV4: u8 = 1;
export const GSO_ECN: u8 = 0x80;

// A header meaning "one ordinary packet, checksums complete".
@inline export function emitPlain(p: u32): void {
  store<u64>(p, 0);
  store<u16>(p + 8, 0);
}

export function emitTcp4Gso(p: u32, hdrLen: u32, gsoSize: u32, csumStart: u32): void {
  store<u8>(p + FLAGS, F_NEEDS_CSUM);
  store<u8>(p + GSO_TYPE, GSO_TCPV4);
  store<u16>(p + HDR_LEN, <u16>hdrLen);
  store<u16>(p + GSO_SIZE, <u16>gsoSize);
  store<u16>(p + CSUM_START, <u16>csumStart);
  store<u16>(p + CSUM_OFFSET, 16);
}
