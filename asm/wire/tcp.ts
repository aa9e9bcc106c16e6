// TCP header view (RFC 9293): the fields segmentation and coalescing touch.
export const SRC_PORT: u32 = 0;
export const SEQ: u32 = 4;
export const ACK: u32 = 8;
export const DATA_OFF: u32 = 12; // upper 4 bits: header length in words
export const FLAGS: u32 = 13;
export const WINDOW: u32 = 14;
export const CHECKSUM: u32 = 16;
export const HEADER_LEN: u32 = 20;

export const FIN: u8 = 0x01;
export const SYN: u8 = 0x02;
export const RST: u8 = 0x04;
export const PSH: u8 = 0x08;
export const ACK_FLAG: u8 = 0x10;
export const URG: u8 = 0x20;
export const ECE: u8 = 0x40;
export const CWR: u8 = 0x80;

@inline export function headerLen(t: u32): u32 {
  return (<u32>load<u8>(t + DATA_OFF) >> 4) << 2;
}
