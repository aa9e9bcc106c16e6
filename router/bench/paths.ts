// The paths `weft bench dataplane` measures, in run order (kept apart from bench.ts so
// the CLI can list them without loading the bench).
export const BENCH_PATHS = ["kernel-direct", "kernel-vxlan", "weft-ipip", "weft-ipip-nicgro", "weft-vxlan", "weft-vxlan-rxthread", "weft-vxlan-busypoll", "weft-crosssubnet"] as const;
export type BenchPath = (typeof BENCH_PATHS)[number];

/** Tools a path needs beyond the bench's own (iperf3, sockperf): the NIC-like GRO row sets veth features with ethtool. */
const NEEDS: Partial<Record<BenchPath, string>> = { "weft-ipip-nicgro": "ethtool" };

/** The wanted paths this machine can measure, and a line for each left out for a missing tool. */
export function measurablePaths(wanted: readonly BenchPath[], installed: (tool: string) => boolean): { paths: BenchPath[]; leftOut: string[] } {
  const leftOut: string[] = [];
  const paths = wanted.filter((p) => {
    const tool = NEEDS[p];
    if (!tool || installed(tool)) return true;
    leftOut.push(`${p} left out: ${tool} is not installed (apt install ${tool})`);
    return false;
  });
  return { paths, leftOut };
}
