// The seed's architecture: subnet A 10.30.0.0/24 (master, worker-1, worker-2),
// subnet B 10.30.1.0/24 (worker-3), a gateway on both that knows no pod routes,
// and one pod per worker.

export type LabMode = "ipip" | "vxlan" | "direct" | "crosssubnet";

export interface LabHost {
  name: string;
  short: string; // for interface and namespace names
  address: string; // with prefix
  gateway: string;
  subnet: "A" | "B";
  block: string;
}

export interface LabPod {
  name: string;
  host: string;
  address: string;
}

export const HOSTS: LabHost[] = [
  { name: "master", short: "m", address: "10.30.0.10/24", gateway: "10.30.0.1", subnet: "A", block: "192.168.219.64/26" },
  { name: "worker-1", short: "w1", address: "10.30.0.11/24", gateway: "10.30.0.1", subnet: "A", block: "192.168.226.64/26" },
  { name: "worker-2", short: "w2", address: "10.30.0.12/24", gateway: "10.30.0.1", subnet: "A", block: "192.168.133.192/26" },
  { name: "worker-3", short: "w3", address: "10.30.1.13/24", gateway: "10.30.1.1", subnet: "B", block: "192.168.97.192/26" },
];

export const PODS: LabPod[] = [
  { name: "pod-1", host: "worker-1", address: "192.168.226.65" },
  { name: "pod-2", host: "worker-2", address: "192.168.133.194" },
  { name: "pod-3", host: "worker-3", address: "192.168.97.193" },
];

export const GATEWAY = { A: "10.30.0.1/24", B: "10.30.1.1/24" } as const;

export function hostByName(name: string): LabHost {
  const h = HOSTS.find((x) => x.name === name);
  if (!h) throw new Error(`no lab host ${name}; hosts are ${HOSTS.map((x) => x.name).join(", ")}`);
  return h;
}

export const addressOf = (h: LabHost) => h.address.split("/")[0];
