/**
 * Separate network hosts on one machine: a Linux bridge in the root namespace with the
 * bus's address, and one network namespace per host joined to it by a veth pair. A
 * process started with `exec(host, ...)` sees only its own namespace: its own address,
 * and the bus over the bridge.
 */
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { promisify } from "node:util";

const run = promisify(execFile);

export interface Netns {
  /** Address of the bridge: where the bus listens. */
  readonly gateway: string;
  /** Each host's namespace name and address. */
  readonly hosts: ReadonlyArray<{ name: string; ns: string; address: string }>;
  /** The command prefix that runs a program inside a host's namespace. */
  prefix(host: string): string[];
  remove(): Promise<void>;
}

/** Why namespaces cannot be made here, or undefined when they can. */
export async function netnsUnavailable(): Promise<string | undefined> {
  if (process.getuid?.() !== 0) return "network namespaces need root";
  const probe = `sbprobe${randomBytes(3).toString("hex")}`;
  try {
    await run("ip", ["netns", "add", probe]);
    await run("ip", ["netns", "del", probe]);
    return undefined;
  } catch (err) {
    return `the kernel or sandbox refuses network namespaces: ${(err as Error).message.split("\n")[0]}`;
  }
}

export async function createNetns(hostNames: string[]): Promise<Netns> {
  const tag = randomBytes(2).toString("hex");
  const octet = 100 + (parseInt(tag, 16) % 100);
  const bridge = `sbbr${tag}`;
  const gateway = `10.${octet}.0.1`;
  const hosts = hostNames.map((name, i) => ({ name, ns: `sb${tag}-${i}`, address: `10.${octet}.0.${i + 11}` }));
  const cleanup: Array<() => Promise<unknown>> = [];
  const ip = (...args: string[]) => run("ip", args);
  const remove = async () => {
    for (const undo of cleanup.reverse()) await undo().catch(() => undefined);
  };
  try {
    await ip("link", "add", bridge, "type", "bridge");
    cleanup.push(() => ip("link", "del", bridge));
    await ip("addr", "add", `${gateway}/16`, "dev", bridge);
    await ip("link", "set", bridge, "up");
    for (const [i, h] of hosts.entries()) {
      const outer = `sbv${tag}${i}`;
      const inner = `sbp${tag}${i}`;
      await ip("netns", "add", h.ns);
      cleanup.push(() => ip("netns", "del", h.ns));
      await ip("link", "add", outer, "type", "veth", "peer", "name", inner);
      cleanup.push(() => ip("link", "del", outer));
      await ip("link", "set", inner, "netns", h.ns);
      await ip("link", "set", outer, "master", bridge);
      await ip("link", "set", outer, "up");
      await ip("netns", "exec", h.ns, "ip", "addr", "add", `${h.address}/16`, "dev", inner);
      await ip("netns", "exec", h.ns, "ip", "link", "set", inner, "up");
      await ip("netns", "exec", h.ns, "ip", "link", "set", "lo", "up");
    }
  } catch (err) {
    await remove();
    throw err;
  }
  return {
    gateway,
    hosts,
    prefix: (host) => {
      const h = hosts.find((x) => x.name === host);
      if (!h) throw new Error(`no namespace for ${host}`);
      return ["ip", "netns", "exec", h.ns];
    },
    remove,
  };
}
