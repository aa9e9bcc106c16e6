// Internet checksum (RFC 1071) over [p, p+len).
export function sum16(p: u32, len: u32, acc: u32 = 0): u32 {
  let s: u64 = acc;
  let i: u32 = 0;
  for (; i + 4 <= len; i += 4) {
    const w = load<u32>(p + i);
    // Sum 32-bit words in memory (little-endian) order; fold and swap once at the end.
    s += <u64>w;
  }
  if (i + 2 <= len) {
    s += <u64>load<u16>(p + i);
    i += 2;
  }
  if (i < len) s += <u64>load<u8>(p + i);
  // Fold to 16 bits.
  s = (s & 0xffffffff) + (s >> 32);
  s = (s & 0xffffffff) + (s >> 32);
  let t = <u32>s;
  t = (t & 0xffff) + (t >> 16);
  t = (t & 0xffff) + (t >> 16);
  return t;
}

// Checksum of [p, p+len) in memory order: store it with store<u16> as is. The
// one's-complement sum is byte-order independent, so no swap is needed (RFC 1071).
export function checksum(p: u32, len: u32): u16 {
  return <u16>~sum16(p, len);
}

@inline
export function loadBE16(p: u32): u32 {
  return <u32>bswap<u16>(load<u16>(p));
}
@inline
export function loadBE32(p: u32): u32 {
  return bswap<u32>(load<u32>(p));
}
@inline
export function storeBE16(p: u32, v: u32): void {
  store<u16>(p, bswap<u16>(<u16>v));
}
@inline
export function storeBE32(p: u32, v: u32): void {
  store<u32>(p, bswap<u32>(v));
}
