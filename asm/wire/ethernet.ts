// Ethernet II frame header (inner frame of VXLAN).
export const DST: u32 = 0;
export const SRC: u32 = 6;
export const ETHERTYPE: u32 = 12;
export const HEADER_LEN: u32 = 14;
export const TYPE_IPV4: u32 = 0x0800;

@inline
export function copyMac(to: u32, from: u32): void {
  store<u32>(to, load<u32>(from));
  store<u16>(to + 4, load<u16>(from + 4));
}

@inline
export function macEquals(a: u32, b: u32): bool {
  return load<u32>(a) == load<u32>(b) && load<u16>(a + 4) == load<u16>(b + 4);
}
