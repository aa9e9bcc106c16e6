// Names of the fast path's counters (asm/counters.ts holds the same indexes).
export const COUNTER_NAMES: Record<number, string> = {
  0: "tun_rx",
  1: "ipip_tx",
  2: "vxlan_tx",
  3: "ipip_rx",
  4: "vxlan_rx",
  5: "tun_tx",
  6: "icmp_unreachable_sent",
  7: "icmp_frag_needed_sent",
  8: "bytes_encapsulated",
  9: "bytes_decapsulated",
  10: "tso_packets_split",
  11: "tso_segments",
  12: "gro_packets_written",
  13: "gro_segments_merged",
  14: "checksums_completed",
  16: "drop_malformed_inner",
  17: "drop_malformed_outer",
  18: "drop_bad_checksum",
  19: "drop_unknown_source",
  20: "drop_wrong_vni",
  21: "drop_bad_vxlan_flags",
  22: "drop_wrong_mac",
  23: "drop_not_ipv4",
  24: "drop_too_big",
  25: "drop_no_route",
  26: "drop_truncated",
  27: "drop_not_ipip",
  28: "drop_route_not_encapsulated",
  29: "drop_out_of_space",
  30: "drop_bad_offload_header",
  // Counted on the host side of the fast path.
  40: "drop_send_failed",
  41: "tun_tx_failed",
  42: "tun_batches",
  43: "network_batches",
};

export const HOST_COUNTER = { sendFailed: 40, tunWriteFailed: 41, tunBatches: 42, networkBatches: 43 } as const;

export type Counters = Record<string, number>;
