// Internet checksum (RFC 1071) over [p, p+len), in memory order: 16-bit words are
// summed as loaded (little-endian); the one's-complement sum is byte-order
// independent, so the folded result stores back with store<u16> as is.
// Bulk data goes 32 bytes per step through SIMD: each u32 lane gathers pairs of u16
// words (at most 0x1fffe per step), so lanes cannot overflow below 1 MiB; longer
// ranges are folded every 256 KiB.
export function sum16(p: u32, len: u32, acc: u32 = 0): u32 {
  return sumRange(0, p, len, acc, false);
}

// The same sum while copying [src, src+len) to dst (regions must not overlap):
// one pass over the data instead of a copy and a sum.
export function sum16Copy(dst: u32, src: u32, len: u32, acc: u32 = 0): u32 {
  return sumRange(dst, src, len, acc, true);
}

// The loop of both: inlined with a constant `copy`, so each keeps only its own stores.
@inline function sumRange(dst: u32, src: u32, len: u32, acc: u32, copy: bool): u32 {
  let s: u64 = acc;
  let i: u32 = 0;
  while (i + 32 <= len) {
    const end = min(len, i + (256 << 10));
    let a = i32x4.splat(0);
    let b = i32x4.splat(0);
    for (; i + 32 <= end; i += 32) {
      const x = v128.load(src + i);
      const y = v128.load(src + i, 16);
      if (copy) {
        v128.store(dst + i, x);
        v128.store(dst + i, y, 16);
      }
      a = i32x4.add(a, i32x4.extadd_pairwise_i16x8_u(x));
      b = i32x4.add(b, i32x4.extadd_pairwise_i16x8_u(y));
    }
    s += lanes(a) + lanes(b);
  }
  if (copy && i < len) memory.copy(dst + i, src + i, len - i);
  return finish(s, src + i, len - i);
}

@inline function lanes(v: v128): u64 {
  return <u64><u32>i32x4.extract_lane(v, 0) + <u64><u32>i32x4.extract_lane(v, 1) + <u64><u32>i32x4.extract_lane(v, 2) + <u64><u32>i32x4.extract_lane(v, 3);
}

// Folds a sum of 16-bit sums (as sum16 returns, or several added) to 16 bits.
@inline export function fold16(x: u32): u32 {
  let t = (x & 0xffff) + (x >> 16);
  return (t & 0xffff) + (t >> 16);
}

// Adds the tail (< 32 bytes, word by word) and folds to 16 bits.
function finish(acc: u64, p: u32, len: u32): u32 {
  let s = acc;
  let i: u32 = 0;
  for (; i + 4 <= len; i += 4) s += <u64>load<u32>(p + i);
  if (i + 2 <= len) {
    s += <u64>load<u16>(p + i);
    i += 2;
  }
  if (i < len) s += <u64>load<u8>(p + i);
  s = (s & 0xffffffff) + (s >> 32);
  s = (s & 0xffffffff) + (s >> 32);
  return fold16(<u32>s);
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
