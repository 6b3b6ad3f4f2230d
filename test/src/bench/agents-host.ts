/**
 * One process of the stackbus side of the benchmark: `count` real agents (`startAgent`),
 * each with its own NATS connection, its own TOP_DIR (with the K no-op hooks) and its
 * own state dir, as `count` hosts would run them. Real deployments run one agent process
 * per host; the benchmark shares processes for large N and says so.
 *
 * argv: NATS_URL LAB ROOT FIRST COUNT [COORDINATOR_KEY]. Hosts are `h<index>`; host i's directories are
 * ROOT/h<i>/{devstack,stack,state}. Sends "ready" to the parent when every agent answers.
 */
import { join } from "node:path";
import { Bus, silentLogger } from "@stackbus/bus";
import { startAgent, type AgentHandle } from "@stackbus/agent";
import { hostName } from "./hooks.js";

const [url, lab, root, firstText, countText, coordinatorKey] = process.argv.slice(2) as [string, string, string, string, string, string | undefined];
const first = Number(firstText);
const count = Number(countText);
const logger = silentLogger();
const agents: AgentHandle[] = [];
const buses: Bus[] = [];

for (let i = first; i < first + count; i++) {
  const host = hostName(i);
  const bus = await Bus.connect({ servers: url, name: `bench-agent-${host}`, logger });
  buses.push(bus);
  const dir = join(root, host);
  agents.push(
    await startAgent({
      bus,
      logger,
      lab,
      host,
      topDir: join(dir, "devstack"),
      dest: join(dir, "stack"),
      stateDir: join(dir, "state"),
      coordinatorKey,
    }),
  );
}

process.on("message", (m) => {
  if (m !== "stop") return;
  void (async () => {
    await Promise.allSettled(agents.map((a) => a.stop()));
    await Promise.allSettled(buses.map((b) => b.drain()));
    process.exit(0);
  })();
});
process.send?.("ready");
