// The bench's ratios as a grouped bar chart: SVG text, and PNG rendered from it.
import type { BenchReport, PathResult } from "./bench.js";

const METRICS: Array<{ key: keyof NonNullable<PathResult["ratio"]>; label: string; lowerIsBetter?: boolean }> = [
  { key: "tcp1", label: "TCP, 1 stream" },
  { key: "tcp4", label: "TCP, 4 streams" },
  { key: "udp64", label: "64-byte UDP pps" },
  { key: "rrP50", label: "RR latency p50", lowerIsBetter: true },
  { key: "rrP99", label: "RR latency p99", lowerIsBetter: true },
  { key: "cpuPerGbit", label: "CPU s per Gbit", lowerIsBetter: true },
];

const COLORS: Record<string, string> = {
  "kernel-direct": "#9aa5b1",
  "kernel-vxlan": "#52606d",
  "weft-ipip": "#f0b429",
  "weft-ipip-nicgro": "#f7d070",
  "weft-vxlan": "#2186eb",
  "weft-vxlan-rxthread": "#90cdf4",
  "weft-vxlan-busypoll": "#7c5cff",
  "weft-crosssubnet": "#3ebd93",
};

const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

export function benchSvg(report: BenchReport): string {
  const paths = report.paths;
  const W = 960;
  const H = 440;
  const left = 60;
  const top = 70;
  const bottom = 90;
  const plotH = H - top - bottom;
  const groupW = (W - left - 20) / METRICS.length;
  const barW = Math.min(22, (groupW - 20) / Math.max(paths.length, 1));
  const ratios = paths.flatMap((p) => METRICS.map((m) => p.ratio?.[m.key] ?? 0)).filter(Number.isFinite);
  const max = Math.max(1.5, Math.ceil(Math.max(...ratios) * 2) / 2);
  const y = (v: number) => top + plotH - (Math.min(v, max) / max) * plotH;
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="DejaVu Sans, Arial, sans-serif">`);
  out.push(`<rect width="${W}" height="${H}" fill="#ffffff"/>`);
  out.push(`<text x="${left}" y="28" font-size="18" font-weight="bold">weft bench: each path as a ratio to the kernel's VXLAN (same run)</text>`);
  out.push(`<text x="${left}" y="50" font-size="12" fill="#52606d">${esc(`${report.machine.cpus} CPUs, ${report.machine.model}, Linux ${report.machine.kernel}, Node ${report.machine.node}; pod-1 -> pod-2, ${report.test.seconds} s per TCP run`)}</text>`);
  for (let t = 0; t <= max + 1e-9; t += 0.5) {
    const yy = y(t);
    out.push(`<line x1="${left}" x2="${W - 20}" y1="${yy}" y2="${yy}" stroke="${t === 1 ? "#52606d" : "#e4e7eb"}" stroke-width="${t === 1 ? 1.5 : 1}"${t === 1 ? ' stroke-dasharray="6 4"' : ""}/>`);
    out.push(`<text x="${left - 8}" y="${yy + 4}" font-size="11" text-anchor="end" fill="#52606d">${t.toFixed(1)}x</text>`);
  }
  METRICS.forEach((m, gi) => {
    const gx = left + gi * groupW + (groupW - barW * paths.length) / 2;
    paths.forEach((p, pi) => {
      const v = p.ratio?.[m.key] ?? NaN;
      if (!Number.isFinite(v)) return;
      const x = gx + pi * barW;
      out.push(`<rect x="${x.toFixed(1)}" y="${y(v).toFixed(1)}" width="${(barW - 3).toFixed(1)}" height="${(top + plotH - y(v)).toFixed(1)}" fill="${COLORS[p.path] ?? "#888"}"><title>${esc(`${p.path} ${m.label}: ${v.toFixed(2)}x`)}</title></rect>`);
      out.push(`<text x="${(x + (barW - 3) / 2).toFixed(1)}" y="${(y(v) - 4).toFixed(1)}" font-size="9" text-anchor="middle" fill="#323f4b">${v.toFixed(2)}</text>`);
    });
    const cx = left + gi * groupW + groupW / 2;
    out.push(`<text x="${cx}" y="${top + plotH + 18}" font-size="12" text-anchor="middle">${esc(m.label)}</text>`);
    out.push(`<text x="${cx}" y="${top + plotH + 33}" font-size="10" text-anchor="middle" fill="#7b8794">${m.lowerIsBetter ? "lower is better" : "higher is better"}</text>`);
  });
  // Legend: as many entries per row as fit, then the next row.
  let lx = left;
  let ly = H - 42;
  for (const p of paths) {
    const w = 30 + p.path.length * 7.5;
    if (lx + w > W - 10 && lx > left) {
      lx = left;
      ly += 20;
    }
    out.push(`<rect x="${lx}" y="${ly}" width="12" height="12" fill="${COLORS[p.path] ?? "#888"}"/>`);
    out.push(`<text x="${lx + 17}" y="${ly + 10}" font-size="12">${esc(p.path)}</text>`);
    lx += w;
  }
  out.push("</svg>");
  return `${out.join("\n")}\n`;
}

/** Renders the SVG to PNG (resvg, with the system's fonts). */
export async function benchPng(svg: string): Promise<Buffer> {
  const { Resvg } = await import("@resvg/resvg-js");
  return new Resvg(svg, { font: { loadSystemFonts: true, defaultFontFamily: "DejaVu Sans" }, background: "#ffffff" }).render().asPng();
}
