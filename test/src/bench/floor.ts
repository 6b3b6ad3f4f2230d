import { fork, type ChildProcess } from "node:child_process";
import { connect } from "@nats-io/transport-node";
import { createInbox } from "@nats-io/nats-core";
import { STACK_PHASES } from "./hooks.js";

const WORKER = new URL("./floor-worker.js", import.meta.url).pathname;

/**
 * The floor: N persistent bash shells (the helper library sourced once, when they start)
 * driven by a bare NATS barrier — for each step one publish, then wait for N replies. A
 * repetition is the same eight barriers as a stackbus stack run: one for prepare (nothing
 * to run), then the seven stack steps' hooks.
 */
export async function startFloor(url: string, hosts: number, processes: number, hooks: string[], library: string): Promise<{ readonly pids: number[]; run(): Promise<number>; stop(): Promise<void> }> {
  const workers: ChildProcess[] = [];
  const per = Math.ceil(hosts / processes);
  for (let first = 0; first < hosts; first += per) {
    const count = Math.min(per, hosts - first);
    const child = fork(WORKER, [url, String(count), String(first), JSON.stringify(hooks), library], { stdio: "inherit" });
    workers.push(child);
    await new Promise<void>((resolve) => child.once("message", () => resolve()));
  }
  const nc = await connect({ servers: url, name: "bench-floor-driver" });
  const barrier = async (step: number) => {
    const inbox = createInbox();
    let got = 0;
    const done = new Promise<void>((resolve) => {
      nc.subscribe(inbox, {
        max: hosts,
        callback: () => {
          got++;
          if (got === hosts) resolve();
        },
      });
    });
    nc.publish("floor.step", String(step), { reply: inbox });
    await done;
  };
  return {
    pids: workers.map((w) => w.pid as number),
    async run() {
      const t0 = performance.now();
      await barrier(-1);
      for (let s = 0; s < STACK_PHASES.length; s++) await barrier(s);
      return performance.now() - t0;
    },
    async stop() {
      await nc.close();
      for (const w of workers) w.kill("SIGKILL");
    },
  };
}
