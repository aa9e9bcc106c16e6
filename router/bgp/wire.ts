// BGP-4 wire format (RFC 4271) with 4-octet AS (RFC 6793), capabilities (RFC 5492:
// multiprotocol RFC 4760, route refresh RFC 2918, graceful restart RFC 4724), route
// reflection attributes (RFC 4456) and revised error handling (RFC 7606). Decode to
// plain records, encode from them; nothing else lives here.

export const MSG = { OPEN: 1, UPDATE: 2, NOTIFICATION: 3, KEEPALIVE: 4, ROUTE_REFRESH: 5 } as const;
export const HEADER_LEN = 19;
export const MAX_LEN = 4096;
export const AS_TRANS = 23456;

export const ERR = {
  HEADER: 1, // 1 not synchronized, 2 bad length, 3 bad type
  OPEN: 2, // 1 version, 2 bad peer AS, 3 bad BGP id, 4 unsupported optional parameter, 6 hold time, 7 unsupported capability
  UPDATE: 3, // 1 malformed attribute list, 2 unrecognized well-known, 3 missing well-known, 4 flags, 5 length, 6 origin, 8 next hop, 9 optional, 10 network field, 11 AS_PATH
  HOLD_EXPIRED: 4,
  FSM: 5,
  CEASE: 6, // 2 administrative shutdown, 3 peer de-configured, 5 connection rejected, 7 collision resolution
} as const;

export const CAP = { MULTIPROTOCOL: 1, ROUTE_REFRESH: 2, GRACEFUL_RESTART: 64, AS4: 65 } as const;

export const ATTR = { ORIGIN: 1, AS_PATH: 2, NEXT_HOP: 3, MED: 4, LOCAL_PREF: 5, ATOMIC_AGGREGATE: 6, AGGREGATOR: 7, COMMUNITIES: 8, ORIGINATOR_ID: 9, CLUSTER_LIST: 10, LARGE_COMMUNITY: 32 } as const;
const F_OPTIONAL = 0x80;
const F_TRANSITIVE = 0x40;
const F_PARTIAL = 0x20;
const F_EXTENDED = 0x10;

/** A protocol error: the session answers it with a NOTIFICATION of this code/subcode. */
export class BgpError extends Error {
  constructor(
    readonly code: number,
    readonly subcode: number,
    message: string,
    readonly data: Uint8Array = new Uint8Array(0),
  ) {
    super(message);
  }
}

export interface Prefix {
  addr: number; // host order
  len: number;
}

export type Capability =
  | { code: 1; afi: number; safi: number }
  | { code: 2 }
  | { code: 64; restarting: boolean; restartTime: number; families: Array<{ afi: number; safi: number; forwarding: boolean }> }
  | { code: 65; as: number }
  | { code: number; data: Uint8Array; unknown: true };

export interface Open {
  type: 1;
  version: number;
  as: number; // 4-octet AS when the AS4 capability is present, else the 2-octet field
  holdTime: number;
  bgpId: string;
  capabilities: Capability[];
}

export interface AsSegment {
  type: 1 | 2; // AS_SET, AS_SEQUENCE
  asns: number[];
}

export interface Attributes {
  origin?: number;
  asPath?: AsSegment[];
  nextHop?: string;
  med?: number;
  localPref?: number;
  atomicAggregate?: boolean;
  aggregator?: { as: number; address: string };
  communities?: number[];
  /** RFC 8092: global administrator, local data 1, local data 2. */
  largeCommunities?: Array<[number, number, number]>;
  originatorId?: string;
  clusterList?: string[];
  /** Optional transitive attributes we do not know: passed on with the partial bit. */
  unknown?: Array<{ flags: number; code: number; data: Uint8Array }>;
}

export interface Update {
  type: 2;
  withdrawn: Prefix[];
  attributes: Attributes;
  nlri: Prefix[];
  /** RFC 7606: an attribute error that makes this UPDATE's NLRI count as withdrawn. */
  treatAsWithdraw?: string;
}

export interface Notification {
  type: 3;
  code: number;
  subcode: number;
  data: Uint8Array;
}

export type Message = Open | Update | Notification | { type: 4 } | { type: 5; afi: number; safi: number };

export const isEndOfRib = (u: Update) => u.withdrawn.length === 0 && u.nlri.length === 0 && Object.keys(u.attributes).length === 0 && !u.treatAsWithdraw;

// --- helpers ---------------------------------------------------------------------

function ipToString(v: number): string {
  return `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;
}
function ipFromString(s: string): number {
  const p = s.split(".").map(Number);
  return ((p[0] << 24) | (p[1] << 16) | (p[2] << 8) | p[3]) >>> 0;
}

class Writer {
  private buf = new Uint8Array(256);
  len = 0;
  private grow(n: number) {
    if (this.len + n <= this.buf.length) return;
    const b = new Uint8Array(Math.max(this.buf.length * 2, this.len + n));
    b.set(this.buf.subarray(0, this.len));
    this.buf = b;
  }
  u8(v: number) {
    this.grow(1);
    this.buf[this.len++] = v & 255;
  }
  u16(v: number) {
    this.u8(v >> 8);
    this.u8(v);
  }
  u32(v: number) {
    this.u16(v >>> 16);
    this.u16(v & 0xffff);
  }
  bytes(b: Uint8Array) {
    this.grow(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
  }
  ip(s: string) {
    this.u32(ipFromString(s));
  }
  done(): Uint8Array {
    return this.buf.slice(0, this.len);
  }
}

function prefixBytes(w: Writer, p: Prefix) {
  w.u8(p.len);
  const n = Math.ceil(p.len / 8);
  for (let i = 0; i < n; i++) w.u8((p.addr >>> (24 - 8 * i)) & 255);
}

/** A BGP message: the header (marker, length, type) in front of a body. */
export function message(type: number, body: Uint8Array): Uint8Array {
  const len = HEADER_LEN + body.length;
  const m = new Uint8Array(len);
  m.fill(0xff, 0, 16);
  m[16] = len >> 8;
  m[17] = len & 255;
  m[18] = type;
  m.set(body, HEADER_LEN);
  return m;
}

// --- encode ------------------------------------------------------------------------

export function encodeOpen(o: Omit<Open, "type" | "version"> & { version?: number }): Uint8Array {
  const caps = new Writer();
  for (const c of o.capabilities) {
    const v = new Writer();
    if (c.code === CAP.MULTIPROTOCOL && "afi" in c && !("unknown" in c)) {
      v.u16(c.afi);
      v.u8(0);
      v.u8(c.safi);
    } else if (c.code === CAP.AS4 && "as" in c) {
      v.u32(c.as);
    } else if (c.code === CAP.GRACEFUL_RESTART && "families" in c) {
      v.u16((c.restarting ? 0x8000 : 0) | (c.restartTime & 0x0fff));
      for (const f of c.families) {
        v.u16(f.afi);
        v.u8(f.safi);
        v.u8(f.forwarding ? 0x80 : 0);
      }
    } else if ("unknown" in c) {
      v.bytes(c.data);
    }
    const body = v.done();
    caps.u8(c.code);
    caps.u8(body.length);
    caps.bytes(body);
  }
  const params = new Writer();
  const capBytes = caps.done();
  if (capBytes.length) {
    params.u8(2); // capabilities optional parameter
    params.u8(capBytes.length);
    params.bytes(capBytes);
  }
  const w = new Writer();
  w.u8(o.version ?? 4);
  w.u16(o.as > 0xffff ? AS_TRANS : o.as);
  w.u16(o.holdTime);
  w.ip(o.bgpId);
  const p = params.done();
  w.u8(p.length);
  w.bytes(p);
  return message(MSG.OPEN, w.done());
}

function attr(w: Writer, flags: number, code: number, body: Uint8Array) {
  const ext = body.length > 255;
  w.u8(flags | (ext ? F_EXTENDED : 0));
  w.u8(code);
  if (ext) w.u16(body.length);
  else w.u8(body.length);
  w.bytes(body);
}

export function encodeAttributes(a: Attributes): Uint8Array {
  const w = new Writer();
  const one = (f: (v: Writer) => void) => {
    const v = new Writer();
    f(v);
    return v.done();
  };
  if (a.origin !== undefined) attr(w, F_TRANSITIVE, ATTR.ORIGIN, one((v) => v.u8(a.origin!)));
  if (a.asPath !== undefined)
    attr(w, F_TRANSITIVE, ATTR.AS_PATH, one((v) => {
      for (const s of a.asPath!) {
        v.u8(s.type);
        v.u8(s.asns.length);
        for (const asn of s.asns) v.u32(asn);
      }
    }));
  if (a.nextHop !== undefined) attr(w, F_TRANSITIVE, ATTR.NEXT_HOP, one((v) => v.ip(a.nextHop!)));
  if (a.med !== undefined) attr(w, F_OPTIONAL, ATTR.MED, one((v) => v.u32(a.med!)));
  if (a.localPref !== undefined) attr(w, F_TRANSITIVE, ATTR.LOCAL_PREF, one((v) => v.u32(a.localPref!)));
  if (a.atomicAggregate) attr(w, F_TRANSITIVE, ATTR.ATOMIC_AGGREGATE, new Uint8Array(0));
  if (a.aggregator) attr(w, F_OPTIONAL | F_TRANSITIVE, ATTR.AGGREGATOR, one((v) => (v.u32(a.aggregator!.as), v.ip(a.aggregator!.address))));
  if (a.communities) attr(w, F_OPTIONAL | F_TRANSITIVE, ATTR.COMMUNITIES, one((v) => a.communities!.forEach((c) => v.u32(c))));
  if (a.largeCommunities) attr(w, F_OPTIONAL | F_TRANSITIVE, ATTR.LARGE_COMMUNITY, one((v) => a.largeCommunities!.forEach((c) => c.forEach((x) => v.u32(x)))));
  if (a.originatorId !== undefined) attr(w, F_OPTIONAL, ATTR.ORIGINATOR_ID, one((v) => v.ip(a.originatorId!)));
  if (a.clusterList !== undefined) attr(w, F_OPTIONAL, ATTR.CLUSTER_LIST, one((v) => a.clusterList!.forEach((c) => v.ip(c))));
  for (const u of a.unknown ?? []) attr(w, (u.flags & ~F_EXTENDED) | F_PARTIAL, u.code, u.data);
  return w.done();
}

/** One UPDATE; the caller keeps NLRI within one message (encodeUpdates splits). */
export function encodeUpdate(u: Omit<Update, "type">): Uint8Array {
  const w = new Writer();
  const wd = new Writer();
  u.withdrawn.forEach((p) => prefixBytes(wd, p));
  const wdb = wd.done();
  w.u16(wdb.length);
  w.bytes(wdb);
  const ab = u.nlri.length || Object.keys(u.attributes).length ? encodeAttributes(u.attributes) : new Uint8Array(0);
  w.u16(ab.length);
  w.bytes(ab);
  u.nlri.forEach((p) => prefixBytes(w, p));
  return message(MSG.UPDATE, w.done());
}

/** Splits announcements and withdrawals over as many UPDATEs as the 4096-byte limit needs. */
export function encodeUpdates(withdrawn: Prefix[], attributes: Attributes, nlri: Prefix[]): Uint8Array[] {
  const out: Uint8Array[] = [];
  const per = 700; // 5 bytes per prefix at most: well within 4096 with attributes
  for (let i = 0; i < withdrawn.length; i += per) out.push(encodeUpdate({ withdrawn: withdrawn.slice(i, i + per), attributes: {}, nlri: [] }));
  for (let i = 0; i < nlri.length; i += per) out.push(encodeUpdate({ withdrawn: [], attributes, nlri: nlri.slice(i, i + per) }));
  return out;
}

export const encodeEndOfRib = () => encodeUpdate({ withdrawn: [], attributes: {}, nlri: [] });
export const encodeKeepalive = () => message(MSG.KEEPALIVE, new Uint8Array(0));

export function encodeNotification(code: number, subcode: number, data: Uint8Array = new Uint8Array(0)): Uint8Array {
  const b = new Uint8Array(2 + data.length);
  b[0] = code;
  b[1] = subcode;
  b.set(data, 2);
  return message(MSG.NOTIFICATION, b);
}

export function encodeRouteRefresh(afi = 1, safi = 1): Uint8Array {
  return message(MSG.ROUTE_REFRESH, new Uint8Array([afi >> 8, afi & 255, 0, safi]));
}

// --- decode ------------------------------------------------------------------------

/** Length of the next message in buf if its header is complete, validating the header. */
export function frameLength(buf: Uint8Array): number | undefined {
  if (buf.length < HEADER_LEN) return undefined;
  for (let i = 0; i < 16; i++) if (buf[i] !== 0xff) throw new BgpError(ERR.HEADER, 1, "message header marker is not all ones");
  const len = (buf[16] << 8) | buf[17];
  const type = buf[18];
  if (len < HEADER_LEN || len > MAX_LEN) throw new BgpError(ERR.HEADER, 2, `bad message length ${len}`, buf.slice(16, 18));
  if (type < 1 || type > 5) throw new BgpError(ERR.HEADER, 3, `bad message type ${type}`, buf.slice(18, 19));
  const min = [0, 29, 23, 21, 19, 23][type];
  if (len < min || (type === MSG.KEEPALIVE && len !== 19)) throw new BgpError(ERR.HEADER, 2, `bad length ${len} for message type ${type}`, buf.slice(16, 18));
  return len;
}

/** Decodes one complete message (header included). */
export function decodeMessage(m: Uint8Array): Message {
  const len = frameLength(m);
  if (len === undefined || len !== m.length) throw new BgpError(ERR.HEADER, 2, "truncated message");
  const body = m.subarray(HEADER_LEN);
  switch (m[18]) {
    case MSG.OPEN:
      return decodeOpen(body);
    case MSG.UPDATE:
      return decodeUpdate(body);
    case MSG.NOTIFICATION:
      return { type: 3, code: body[0], subcode: body[1], data: body.slice(2) };
    case MSG.KEEPALIVE:
      return { type: 4 };
    default:
      return { type: 5, afi: (body[0] << 8) | body[1], safi: body[3] };
  }
}

function decodeOpen(b: Uint8Array): Open {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const version = b[0];
  if (version !== 4) throw new BgpError(ERR.OPEN, 1, `unsupported BGP version ${version}`, new Uint8Array([0, 4]));
  const as2 = dv.getUint16(1);
  const holdTime = dv.getUint16(3);
  const bgpId = ipToString(dv.getUint32(5));
  const optLen = b[9];
  if (10 + optLen !== b.length) throw new BgpError(ERR.HEADER, 2, "OPEN optional parameters do not fill the message");
  const capabilities: Capability[] = [];
  let i = 10;
  while (i < 10 + optLen) {
    if (i + 2 > b.length) throw new BgpError(ERR.OPEN, 0, "truncated optional parameter");
    const ptype = b[i];
    const plen = b[i + 1];
    if (i + 2 + plen > b.length) throw new BgpError(ERR.OPEN, 0, "optional parameter overruns the OPEN");
    if (ptype !== 2) throw new BgpError(ERR.OPEN, 4, `unsupported optional parameter ${ptype}`);
    let j = i + 2;
    while (j < i + 2 + plen) {
      if (j + 2 > i + 2 + plen) throw new BgpError(ERR.OPEN, 0, "truncated capability");
      const code = b[j];
      const clen = b[j + 1];
      const v = b.subarray(j + 2, j + 2 + clen);
      if (j + 2 + clen > i + 2 + plen) throw new BgpError(ERR.OPEN, 0, "capability overruns its parameter");
      const cdv = new DataView(v.buffer, v.byteOffset, v.byteLength);
      if (code === CAP.MULTIPROTOCOL && clen === 4) capabilities.push({ code: 1, afi: cdv.getUint16(0), safi: v[3] });
      else if (code === CAP.ROUTE_REFRESH && clen === 0) capabilities.push({ code: 2 });
      else if (code === CAP.AS4 && clen === 4) capabilities.push({ code: 65, as: cdv.getUint32(0) });
      else if (code === CAP.GRACEFUL_RESTART && clen >= 2 && (clen - 2) % 4 === 0) {
        const fl = cdv.getUint16(0);
        const families = [];
        for (let k = 2; k < clen; k += 4) families.push({ afi: cdv.getUint16(k), safi: v[k + 2], forwarding: (v[k + 3] & 0x80) !== 0 });
        capabilities.push({ code: 64, restarting: (fl & 0x8000) !== 0, restartTime: fl & 0x0fff, families });
      } else capabilities.push({ code, data: v.slice(), unknown: true }); // skipped, as RFC 5492 allows
      j += 2 + clen;
    }
    i += 2 + plen;
  }
  const as4 = capabilities.find((c): c is { code: 65; as: number } => c.code === CAP.AS4 && "as" in c);
  return { type: 1, version, as: as4 ? as4.as : as2, holdTime, bgpId, capabilities };
}

function decodePrefixes(b: Uint8Array, start: number, end: number, what: string): Prefix[] {
  const out: Prefix[] = [];
  let i = start;
  while (i < end) {
    const len = b[i];
    if (len > 32) throw new BgpError(ERR.UPDATE, what === "NLRI" ? 10 : 1, `${what} prefix length ${len} > 32`);
    const n = Math.ceil(len / 8);
    if (i + 1 + n > end) throw new BgpError(ERR.UPDATE, what === "NLRI" ? 10 : 1, `${what} prefix overruns the field`);
    let addr = 0;
    for (let k = 0; k < 4; k++) addr = (addr << 8) | (k < n ? b[i + 1 + k] : 0);
    addr >>>= 0;
    const mask = len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
    out.push({ addr: (addr & mask) >>> 0, len });
    i += 1 + n;
  }
  return out;
}

function decodeUpdate(b: Uint8Array): Update {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  if (b.length < 4) throw new BgpError(ERR.UPDATE, 1, "UPDATE too short");
  const wlen = dv.getUint16(0);
  if (2 + wlen + 2 > b.length) throw new BgpError(ERR.UPDATE, 1, "withdrawn routes length overruns the UPDATE");
  const withdrawn = decodePrefixes(b, 2, 2 + wlen, "withdrawn");
  const alen = dv.getUint16(2 + wlen);
  const aStart = 4 + wlen;
  if (aStart + alen > b.length) throw new BgpError(ERR.UPDATE, 1, "path attribute length overruns the UPDATE");
  const nlri = decodePrefixes(b, aStart + alen, b.length, "NLRI");
  const { attributes, error } = decodeAttributes(b, aStart, aStart + alen);
  const u: Update = { type: 2, withdrawn, attributes, nlri };
  // RFC 7606 3(d): a missing well-known attribute with NLRI present is treat-as-withdraw.
  const missing = nlri.length ? [attributes.origin === undefined && "ORIGIN", attributes.asPath === undefined && "AS_PATH", attributes.nextHop === undefined && "NEXT_HOP"].filter(Boolean) : [];
  if (error) u.treatAsWithdraw = error;
  else if (missing.length) u.treatAsWithdraw = `missing well-known attribute ${missing.join(", ")}`;
  return u;
}

const WELL_KNOWN: number[] = [ATTR.ORIGIN, ATTR.AS_PATH, ATTR.NEXT_HOP, ATTR.LOCAL_PREF, ATTR.ATOMIC_AGGREGATE];

function decodeAttributes(b: Uint8Array, start: number, end: number): { attributes: Attributes; error?: string } {
  const a: Attributes = {};
  const seen = new Set<number>();
  let error: string | undefined;
  const bad = (why: string) => (error ??= why);
  let i = start;
  while (i < end) {
    if (i + 3 > end) return { attributes: a, error: bad("truncated attribute header") };
    const flags = b[i];
    const code = b[i + 1];
    const ext = (flags & F_EXTENDED) !== 0;
    if (ext && i + 4 > end) return { attributes: a, error: bad("truncated attribute header") };
    const len = ext ? (b[i + 2] << 8) | b[i + 3] : b[i + 2];
    const v = b.subarray(i + (ext ? 4 : 3), i + (ext ? 4 : 3) + len);
    i += (ext ? 4 : 3) + len;
    if (i > end) return { attributes: a, error: bad(`attribute ${code} overruns the attribute list`) };
    if (seen.has(code)) continue; // RFC 7606 3(g): keep the first
    seen.add(code);
    const dv = new DataView(v.buffer, v.byteOffset, v.byteLength);
    const optional = (flags & F_OPTIONAL) !== 0;
    if (WELL_KNOWN.includes(code) && optional) {
      bad(`attribute ${code} has the optional flag`);
      continue;
    }
    switch (code) {
      case ATTR.ORIGIN:
        if (len !== 1 || v[0] > 2) bad("invalid ORIGIN");
        else a.origin = v[0];
        break;
      case ATTR.AS_PATH: {
        const segs: AsSegment[] = [];
        let k = 0;
        let ok = true;
        while (k < len) {
          const t = v[k];
          const n = v[k + 1];
          if (k + 2 > len || (t !== 1 && t !== 2) || n === 0 || k + 2 + n * 4 > len) {
            ok = false;
            break;
          }
          const asns = [];
          for (let x = 0; x < n; x++) asns.push(dv.getUint32(k + 2 + x * 4));
          segs.push({ type: t as 1 | 2, asns });
          k += 2 + n * 4;
        }
        if (!ok) bad("malformed AS_PATH");
        else a.asPath = segs;
        break;
      }
      case ATTR.NEXT_HOP:
        if (len !== 4) bad("invalid NEXT_HOP length");
        else a.nextHop = ipToString(dv.getUint32(0));
        break;
      case ATTR.MED:
        if (len !== 4) bad("invalid MED length");
        else a.med = dv.getUint32(0);
        break;
      case ATTR.LOCAL_PREF:
        if (len !== 4) bad("invalid LOCAL_PREF length");
        else a.localPref = dv.getUint32(0);
        break;
      case ATTR.ATOMIC_AGGREGATE:
        a.atomicAggregate = true;
        break;
      case ATTR.AGGREGATOR:
        if (len === 8) a.aggregator = { as: dv.getUint32(0), address: ipToString(dv.getUint32(4)) };
        else if (len === 6) a.aggregator = { as: dv.getUint16(0), address: ipToString(dv.getUint32(2)) };
        break; // malformed: discarded (RFC 7606 7.7)
      case ATTR.COMMUNITIES:
        if (len % 4 !== 0 || len === 0) bad("malformed COMMUNITIES");
        else a.communities = Array.from({ length: len / 4 }, (_, k) => dv.getUint32(k * 4));
        break;
      case ATTR.LARGE_COMMUNITY:
        // RFC 8092 6: malformed is treat-as-withdraw.
        if (len % 12 !== 0 || len === 0) bad("malformed LARGE_COMMUNITY");
        else a.largeCommunities = Array.from({ length: len / 12 }, (_, k) => [dv.getUint32(k * 12), dv.getUint32(k * 12 + 4), dv.getUint32(k * 12 + 8)] as [number, number, number]);
        break;
      case ATTR.ORIGINATOR_ID:
        if (len !== 4) bad("malformed ORIGINATOR_ID");
        else a.originatorId = ipToString(dv.getUint32(0));
        break;
      case ATTR.CLUSTER_LIST:
        if (len % 4 !== 0) bad("malformed CLUSTER_LIST");
        else a.clusterList = Array.from({ length: len / 4 }, (_, k) => ipToString(dv.getUint32(k * 4)));
        break;
      default:
        if (!optional) throw new BgpError(ERR.UPDATE, 2, `unrecognized well-known attribute ${code}`, b.slice(i - len - (ext ? 4 : 3), i));
        if (flags & F_TRANSITIVE) (a.unknown ??= []).push({ flags, code, data: v.slice() });
    }
  }
  return { attributes: a, error };
}

export { ipToString, ipFromString };
