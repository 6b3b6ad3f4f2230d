import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, it } from "node:test";
import { z } from "zod";
import { Bus, silentLogger } from "@stackbus/bus";
import { STREAMS, subjects } from "@stackbus/protocol";
import { freePort, startNats, tempDir, waitFor, type NatsServer } from "@stackbus/testkit";

const DEPLOY = fileURLToPath(new URL("../../../deploy/", import.meta.url));
const Any = z.record(z.string(), z.unknown());

/** A deploy/nats config with its placeholders pointed at this machine: temp store, free ports. */
async function localise(file: string, storeDir: string, routePorts: number[] = []): Promise<{ config: string; port: number }> {
  const port = await freePort();
  let config = readFileSync(file, "utf8");
  assert.ok(config.includes('"/var/lib/nats"'), `${file} has the store placeholder`);
  config = config.replace('"/var/lib/nats"', JSON.stringify(storeDir));
  config = config.replace('listen: "0.0.0.0:4222"', `listen: "127.0.0.1:${port}"`);
  config = config.replace('http: "127.0.0.1:8222"', `http: "127.0.0.1:${await freePort()}"`);
  const node = /node-(\d)\.conf$/.exec(file)?.[1];
  if (node) config = config.replace('listen: "0.0.0.0:6222"', `listen: "127.0.0.1:${routePorts[Number(node) - 1]}"`);
  routePorts.forEach((p, i) => (config = config.replace(`nats-route://nats-${i + 1}:6222`, `nats-route://127.0.0.1:${p}`)));
  return { config, port };
}

async function jetStreamReady(bus: Bus): Promise<void> {
  await waitFor("JetStream", async () => {
    const reply = await bus.nc.request("$JS.API.INFO", "", { timeout: 500 });
    return !("error" in reply.json<Record<string, unknown>>());
  }, 15_000);
}

describe("deploy - the example nats-server configs start and serve stackbus", () => {
  it("nats/single.conf starts one JetStream server that takes stackbus's streams", async () => {
    const dir = tempDir("sb-deploy-");
    let server: NatsServer | undefined;
    try {
      const { config, port } = await localise(join(DEPLOY, "nats", "single.conf"), dir.path);
      server = await startNats({ config, port, storeDir: dir.path });
      const bus = await Bus.connect({ servers: server.url, name: "t", logger: silentLogger() });
      await bus.ensureStackbusStreams();
      assert.equal((await bus.publishDurable(subjects.runEvent("lab1", "r1"), Any, { n: 1 })).stream, STREAMS.runs);
      await bus.drain();
    } finally {
      await server?.stop({ keepData: true });
      dir.remove();
    }
  });

  it("nats/cluster/node-{1,2,3}.conf form a cluster where replicas-3 streams work", async () => {
    const dir = tempDir("sb-deployc-");
    const servers: NatsServer[] = [];
    try {
      const files = readdirSync(join(DEPLOY, "nats", "cluster")).filter((f) => f.endsWith(".conf")).sort();
      assert.deepEqual(files, ["node-1.conf", "node-2.conf", "node-3.conf"]);
      const routePorts = [await freePort(), await freePort(), await freePort()];
      const started = await Promise.all(
        files.map(async (f, i) => {
          const storeDir = join(dir.path, `n${i + 1}`);
          mkdirSync(storeDir);
          const { config, port } = await localise(join(DEPLOY, "nats", "cluster", f), storeDir, routePorts);
          return startNats({ config, port, storeDir });
        }),
      );
      servers.push(...started);
      const bus = await Bus.connect({ servers: servers.map((s) => s.url).join(","), name: "t", logger: silentLogger(), replicas: 3 });
      await jetStreamReady(bus);
      await bus.ensureStackbusStreams();
      assert.equal((await (await bus.jsm()).streams.info(STREAMS.logs)).config.num_replicas, 3);
      const kv = await bus.kv("sb_runs");
      await kv.put("lab1.r1", "{}");
      assert.equal((await kv.get("lab1.r1"))?.string(), "{}");
      await bus.drain();
    } finally {
      await Promise.all(servers.map((s) => s.stop({ keepData: true })));
      dir.remove();
    }
  });
});

describe("deploy - systemd units", () => {
  const unitDir = join(DEPLOY, "systemd");
  const units: Array<[string, string]> = [
    ["stackbus-config.service", "serve config"],
    ["stackbus-fetcher.service", "serve fetcher"],
    ["stackbus-coordinator.service", "serve coordinator"],
    ["stackbus-agent@.service", "agent --host %i"],
  ];

  it("each runs its stackbus command as a dedicated user, with the env files, restarting on failure", () => {
    for (const [name, command] of units) {
      const text = readFileSync(join(unitDir, name), "utf8");
      assert.match(text, new RegExp(`^ExecStart=/usr/local/bin/stackbus ${command}$`, "m"), name);
      assert.match(text, /^Restart=on-failure$/m, name);
      assert.match(text, /^EnvironmentFile=\/etc\/stackbus\/stackbus\.env$/m, name);
      assert.match(text, /^EnvironmentFile=-\/etc\/stackbus\/(config|fetcher|coordinator|agent-%i)\.env$/m, name);
      assert.match(text, /^User=(stackbus-(config|fetcher|coordinator)|stack)$/m, name);
      if (name !== "stackbus-agent@.service") assert.match(text, new RegExp(`^User=stackbus-${command.split(" ")[1] ?? ""}$`, "m"), `${name}: a user of its own`);
    }
    const example = readFileSync(join(unitDir, "stackbus.env.example"), "utf8");
    for (const key of ["NATS_URL", "STACKBUS_REPLICAS", "STACKBUS_LAB", "STACKBUS_TLS_CA", "STACKBUS_NATS_NKEY", "STACKBUS_TOP_DIR", "STACKBUS_DEST", "STACKBUS_STATE_DIR"]) {
      assert.match(example, new RegExp(`^#?${key}=`, "m"), key);
    }
  });

  it("systemd-analyze finds nothing wrong in them (when systemd is installed)", (t) => {
    const probe = spawnSync("systemd-analyze", ["--version"], { encoding: "utf8" });
    if (probe.status !== 0) {
      t.skip("systemd-analyze is not installed");
      return;
    }
    const dir = tempDir("sb-units-");
    try {
      for (const [name] of units) {
        const target = join(dir.path, name.replace("@.service", "@compute1.service"));
        copyFileSync(join(unitDir, name), target);
        const out = spawnSync("systemd-analyze", ["verify", "--man=no", target], { encoding: "utf8" });
        const problems = `${out.stdout}${out.stderr}`
          .split("\n")
          .filter((l) => l.trim() && !/is not executable: No such file or directory/.test(l) && !/Failed to .*(cgroup|bus)/i.test(l));
        assert.deepEqual(problems, [], name);
      }
    } finally {
      dir.remove();
    }
  });
});
