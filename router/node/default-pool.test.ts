import { describe, expect, it } from "vitest";
import { defaultPool } from "./default-pool.js";

describe("the pool a node creates when there is none, from Calico's variables", () => {
  it("without variables: Calico's default pool, IPIP Always and natOutgoing as calico.yaml sets them", () => {
    expect(defaultPool({}, ["10.30.0.11/24"])?.spec).toEqual({
      cidr: "192.168.0.0/16",
      blockSize: 26,
      ipipMode: "Always",
      vxlanMode: "Never",
      natOutgoing: true,
      disabled: false,
      disableBGPExport: false,
      nodeSelector: "all()",
    });
  });

  it("a host on 192.168.x and 172.16.x gets the first 172.16-31.0.0/16 free of host addresses, as Calico picks", () => {
    expect(defaultPool({}, ["192.168.1.20/24", "172.16.5.1/16"])?.spec.cidr).toBe("172.17.0.0/16");
  });

  it("takes every CALICO_IPV4POOL_* variable, in Calico's spellings", () => {
    const pool = defaultPool(
      {
        CALICO_IPV4POOL_CIDR: "10.244.0.0/16",
        CALICO_IPV4POOL_BLOCK_SIZE: "24",
        CALICO_IPV4POOL_VXLAN: "cross-subnet",
        CALICO_IPV4POOL_NAT_OUTGOING: "False",
        CALICO_IPV4POOL_NODE_SELECTOR: "zone == 'a'",
        CALICO_IPV4POOL_DISABLE_BGP_EXPORT: "t",
      },
      ["192.168.1.20/24"],
    );
    expect(pool?.metadata.name).toBe("default-ipv4-ippool");
    expect(pool?.spec).toMatchObject({ cidr: "10.244.0.0/16", blockSize: 24, ipipMode: "Never", vxlanMode: "CrossSubnet", natOutgoing: false, nodeSelector: "zone == 'a'", disableBGPExport: true });
    expect(defaultPool({ CALICO_IPV4POOL_IPIP: "off" }, [])?.spec.ipipMode).toBe("Never");
  });

  it("NO_DEFAULT_POOLS=true: no pool", () => {
    expect(defaultPool({ NO_DEFAULT_POOLS: "true" }, [])).toBeUndefined();
  });

  it.each([
    [{ CALICO_IPV4POOL_CIDR: "10.244.0.1/16" }, "CALICO_IPV4POOL_CIDR: IPPool CIDR must be strictly masked"],
    [{ CALICO_IPV4POOL_CIDR: "fd00::/48" }, 'CALICO_IPV4POOL_CIDR: "fd00::/48" is not an IPv4 CIDR such as 10.244.0.0/16'],
    [{ CALICO_IPV4POOL_CIDR: "169.254.0.0/16" }, "CALICO_IPV4POOL_CIDR: IPPool CIDR overlaps with IPv4 link local range 169.254.0.0/16"],
    [{ CALICO_IPV4POOL_BLOCK_SIZE: "19" }, "CALICO_IPV4POOL_BLOCK_SIZE: blockSize must be between 20 and 32 for IPv4 pools"],
    [{ CALICO_IPV4POOL_BLOCK_SIZE: "big" }, 'CALICO_IPV4POOL_BLOCK_SIZE: expected a whole number from 20 to 32, not "big"'],
    [{ CALICO_IPV4POOL_IPIP: "Always", CALICO_IPV4POOL_VXLAN: "Always" }, "CALICO_IPV4POOL_IPIP and CALICO_IPV4POOL_VXLAN: ipipMode and vxlanMode cannot both be enabled"],
    [{ CALICO_IPV4POOL_IPIP: "sometimes" }, 'CALICO_IPV4POOL_IPIP: expected Always, CrossSubnet or Never, not "sometimes"'],
    [{ CALICO_IPV4POOL_VXLAN: "constructor" }, 'CALICO_IPV4POOL_VXLAN: expected Always, CrossSubnet or Never, not "constructor"'],
    [{ CALICO_IPV4POOL_NAT_OUTGOING: "yes" }, 'CALICO_IPV4POOL_NAT_OUTGOING: expected true or false, not "yes"'],
    [{ CALICO_IPV4POOL_NODE_SELECTOR: "zone = 'a'" }, "CALICO_IPV4POOL_NODE_SELECTOR: "],
    [{ NO_DEFAULT_POOLS: "true", CALICO_IPV4POOL_CIDR: "10.244.0.0/16" }, "NO_DEFAULT_POOLS=true and CALICO_IPV4POOL_CIDR are both set"],
  ])("%j is refused: %s", (env, message) => {
    expect(() => defaultPool(env, [])).toThrow(message);
  });
});
