/**
 * Issue 17's attacks, each run as described against a whole lab under the generated
 * permissions (`stackbus auth gen --mode nkey`) on a real nats-server: the services and
 * agents are processes started through the CLI with their own nkeys, the attacker holds
 * one host's or the watcher's credentials.
 */
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { z } from "zod";
import { Bus, PermissionDeniedError, silentLogger } from "@stackbus/bus";
import {
  BUCKETS,
  ErrorCode,
  OBJECT_STORES,
  PluginResolveReplySchema,
  PluginResolveRequestSchema,
  STREAMS,
  StackbusError,
  keys,
  subjects,
  type PhaseCommand,
} from "@stackbus/protocol";
import { freePort, startGitServer, startNats, tempDir, waitFor, type GitServer, type NatsServer } from "@stackbus/testkit";
import { recordingHook, runCli, spawnCli, type Proc } from "./harness.js";

const LAB = "sec";
const HOSTS = ["a", "b"];
const URL_PASSWORD = "Pw-leak-4e1d";
const ADMIN_PASSWORD = "admin-s3cret-77";
const JS = "$JS.API";
const jsonLines = (stdout: string) => stdout.trim().split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as Record<string, unknown>);

/** A lab of two hosts under generated nkey permissions: nats-server, config, fetcher, coordinator, two agents. */
class SecureLab {
  readonly dir = tempDir("sb-attacks-");
  nats!: NatsServer;
  git!: GitServer;
  serverConf = "";
  readonly procs = new Map<string, Proc>();
  readonly buses: Bus[] = [];
  /** local.conf of each host, as applied. */
  readonly localConf = new Map<string, string>();

  get authDir(): string {
    return join(this.dir.path, "auth");
  }
  get shared(): string {
    return join(this.dir.path, "shared.log");
  }
  nkey(role: string): string {
    return join(this.authDir, `${role}.nk`);
  }
  topDir(host: string): string {
    return join(this.dir.path, "hosts", host, "devstack");
  }
  dest(host: string): string {
    return join(this.dir.path, "hosts", host, "stack");
  }

  async start(): Promise<void> {
    this.git = await startGitServer();
    await this.git.commit("good", { "devstack/plugin.sh": { content: recordingHook(this.shared, "plugin "), mode: 0o755 } });
    await this.git.commit("controller-private", { "secrets.env": `ADMIN_PASSWORD=${ADMIN_PASSWORD}\n` });
    writeFileSync(this.shared, "");
    for (const h of HOSTS) {
      mkdirSync(join(this.topDir(h), "extras.d"), { recursive: true });
      mkdirSync(this.dest(h), { recursive: true });
      writeFileSync(join(this.topDir(h), "extras.d", "10-rec.sh"), recordingHook(this.shared));
      this.localConf.set(h, `[[local|localrc]]\nADMIN_PASSWORD=${ADMIN_PASSWORD}\nenable_plugin good ${this.goodUrl} HEAD\n`);
    }
    this.writeManifest();
    const gen = await runCli(["auth", "gen", "--lab", this.manifestFile, "--out", this.authDir, "--mode", "nkey"]);
    assert.equal(gen.code, 0, gen.stderr);
    const storeDir = join(this.dir.path, "store");
    mkdirSync(storeDir);
    const port = await freePort();
    this.serverConf = readFileSync(join(this.authDir, "server.conf"), "utf8").replace('"/var/lib/nats"', JSON.stringify(storeDir)).replace('listen: "0.0.0.0:4222"', `listen: "127.0.0.1:${port}"`);
    this.nats = await startNats({ config: this.serverConf, port, storeDir });
    this.proc("config", ["serve", "config"]);
    this.proc("fetcher", ["serve", "fetcher", "--cache-dir", join(this.dir.path, "fetcher-cache")]);
    this.proc("coordinator", ["serve", "coordinator", "--signing-key", join(this.authDir, "coordinator-sign.nk")]);
    await waitFor("the lab applied", async () => (await this.operator(["lab", "apply", this.manifestFile])).code === 0, 30_000, 300);
    for (const h of HOSTS) {
      this.startAgent(h);
    }
    const operator = await this.as("operator");
    for (const h of HOSTS) {
      await waitFor(`the agent of ${h}`, () => operator.request(subjects.hostPing(LAB, h), z.object({}), {}, z.record(z.string(), z.unknown()), { timeoutMs: 500 }).catch(() => undefined), 30_000, 200);
    }
  }

  /** The agent of `host`, with the coordinator's public key from the environment file auth gen wrote for it. */
  startAgent(host: string): Proc {
    const key = /^STACKBUS_COORDINATOR_KEY="?([A-Z0-9]+)"?$/m.exec(readFileSync(join(this.authDir, "env", `agent-${host}.env`), "utf8"))?.[1] ?? "";
    return this.proc(`agent-${host}`, ["agent", "--host", host, "--lab", LAB, "--top-dir", this.topDir(host), "--dest", this.dest(host), "--state-dir", join(this.dir.path, "hosts", host, "state"), "--heartbeat", "300", "--coordinator-key", key]);
  }

  get goodUrl(): string {
    return this.git.repoUrl("good").replace("http://", `http://user:${URL_PASSWORD}@`);
  }
  get manifestFile(): string {
    return join(this.dir.path, "lab.yaml");
  }

  writeManifest(extra = ""): void {
    const lines = [`lab: ${LAB}`, "hosts:"];
    for (const h of HOSTS) {
      writeFileSync(join(this.dir.path, `${h}.conf`), this.localConf.get(h) ?? "");
      lines.push(`  - name: ${h}`, `    localConf: ${h}.conf`);
    }
    writeFileSync(this.manifestFile, `${lines.join("\n")}\n${extra}`);
  }

  proc(name: string, args: string[]): Proc {
    const p = spawnCli(name, [...args, "--nats", this.nats.url, "--nkey", this.nkey(name)]);
    this.procs.set(name, p);
    return p;
  }

  /** The CLI as the operator. */
  operator(args: string[], timeoutMs?: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return runCli([...args, "--nats", this.nats.url, "--nkey", this.nkey("operator"), ...(args[0] === "lab" && args[1] === "apply" ? [] : ["--lab", LAB])], {}, timeoutMs);
  }

  async as(role: string): Promise<Bus> {
    const bus = await Bus.connect({ servers: this.nats.url, name: `attacker/${role}`, logger: silentLogger(), nkeySeedFile: this.nkey(role) });
    this.buses.push(bus);
    return bus;
  }

  /** What the hooks recorded: `<host> [plugin ]<args>`, each line's time stamp dropped. */
  recorded(): string[] {
    return readFileSync(this.shared, "utf8").split("\n").filter(Boolean).map((l) => l.replace(/ \d+$/, ""));
  }

  async stop(): Promise<void> {
    for (const bus of this.buses) await bus.drain().catch(() => undefined);
    await Promise.all([...this.procs.values()].map((p) => p.kill()));
    await this.nats?.stop();
    await this.git?.stop();
    this.dir.remove();
  }
}

/** A JetStream API request as a raw NATS request; a refusal typed as PermissionDeniedError. */
async function jsApi(bus: Bus, subject: string, body: unknown): Promise<Record<string, unknown>> {
  try {
    const msg = await bus.nc.request(subject, new TextEncoder().encode(JSON.stringify(body)), { timeout: 5_000 });
    return JSON.parse(new TextDecoder().decode(msg.data)) as Record<string, unknown>;
  } catch (err) {
    throw bus.toError(err);
  }
}

const deniedPublish = (subject: string) => (err: unknown) => err instanceof PermissionDeniedError && err.operation === "publish" && err.subject === subject;

describe("attacks - issue 17, with the generated permissions, against a whole lab", () => {
  const lab = new SecureLab();
  before(() => lab.start());
  after(() => lab.stop());

  it("a normal stack of the lab works under the generated permissions, enable_plugin ... HEAD included (item 11)", async () => {
    const res = await lab.operator(["stack", "--wait", "--json"], 180_000);
    assert.equal(res.code, 0, res.stdout + res.stderr);
    const recorded = lab.recorded();
    for (const h of HOSTS) {
      assert.ok(recorded.includes(`${h} stack install`), recorded.join("\n"));
      assert.ok(recorded.includes(`${h} plugin stack install`), `${h}: the plugin enabled at HEAD ran`);
      const head = execFileSync("git", ["-C", join(lab.dest(h), "good"), "rev-parse", "HEAD"], { encoding: "utf8" }).trim();
      assert.equal(head, execFileSync("git", ["-C", lab.git.repoPath("good"), "rev-parse", "HEAD"], { encoding: "utf8" }).trim());
    }
  });

  it("attack 1: agent a stores a command in its registry key and cannot have it delivered to host b's cmd, cancel, ping or plan subject; b runs nothing", async () => {
    writeFileSync(lab.shared, "");
    const agentA = await lab.as("agent-a");
    const forged: PhaseCommand = { lab: LAB, runId: "rforged", kind: "clean", attempt: 1, step: "clean", configRevision: 1, timeoutMs: 60_000, facts: {} };
    const registry = await agentA.kv(BUCKETS.agents);
    await registry.put(keys.agent(LAB, "a"), JSON.stringify(forged));
    const stream = `KV_${BUCKETS.agents}`;
    for (const target of [subjects.hostCommand(LAB, "b"), subjects.hostCancel(LAB, "b"), subjects.hostPing(LAB, "b"), subjects.hostPlan(LAB, "b")]) {
      const create = `${JS}.CONSUMER.CREATE.${stream}`;
      await assert.rejects(
        jsApi(agentA, create, { stream_name: stream, config: { deliver_subject: target, deliver_policy: "last_per_subject", ack_policy: "none" } }),
        deniedPublish(create),
      );
      const filtered = `${JS}.CONSUMER.CREATE.${stream}.evil.$KV.${BUCKETS.agents}.${LAB}.a`;
      await assert.rejects(
        jsApi(agentA, filtered, { stream_name: stream, config: { name: "evil", deliver_subject: target, deliver_policy: "last_per_subject", ack_policy: "none", filter_subject: `$KV.${BUCKETS.agents}.${LAB}.a` } }),
        deniedPublish(filtered),
      );
      // A stream-message get answered on b's subject: an envelope, which b's agent refuses as a malformed message.
      agentA.nc.publish(`${JS}.STREAM.MSG.GET.${stream}`, new TextEncoder().encode(JSON.stringify({ last_by_subj: `$KV.${BUCKETS.agents}.${LAB}.a` })), { reply: target });
    }
    await agentA.nc.flush();
    await new Promise((r) => setTimeout(r, 2_000));
    assert.deepEqual(lab.recorded().filter((l) => l.startsWith("b ")), [], "host b ran nothing");
    assert.match(lab.procs.get("agent-b")?.output() ?? "", /BAD_MESSAGE/);
  });

  it("attack 3: agent a may not create or change a stream to capture reply inboxes; the registry keeps the config service's subjects", async () => {
    const agentA = await lab.as("agent-a");
    for (const name of [`KV_${BUCKETS.agents}`, "CAPTURE"]) {
      const create = `${JS}.STREAM.CREATE.${name}`;
      await assert.rejects(jsApi(agentA, create, { name, subjects: [`$KV.${BUCKETS.agents}.>`, "_INBOX.>"] }), deniedPublish(create));
    }
    const update = `${JS}.STREAM.UPDATE.KV_${BUCKETS.agents}`;
    await assert.rejects(jsApi(agentA, update, { name: `KV_${BUCKETS.agents}`, subjects: [`$KV.${BUCKETS.agents}.>`, "_INBOX.>"] }), deniedPublish(update));
    // The registry is the config service's, as it created it: its own subjects, no direct gets.
    const registry = await (await (await lab.as("config")).jsm()).streams.info(`KV_${BUCKETS.agents}`);
    assert.deepEqual(registry.config.subjects, [`$KV.${BUCKETS.agents}.>`]);
    assert.equal(registry.config.allow_direct, false);
  });

  it("attack 3, start-up: an agent that connects before any service finds the registry missing and is refused creating it, naming the subject", async () => {
    const storeDir = join(lab.dir.path, "store-fresh");
    mkdirSync(storeDir);
    const port = await freePort();
    const fresh = await startNats({ config: lab.serverConf.replace(/listen: "127\.0\.0\.1:\d+"/, `listen: "127.0.0.1:${port}"`).replace(JSON.stringify(join(lab.dir.path, "store")), JSON.stringify(storeDir)), port, storeDir });
    try {
      const agent = spawnCli("early-agent", ["agent", "--host", "a", "--lab", LAB, "--top-dir", lab.topDir("a"), "--dest", lab.dest("a"), "--state-dir", join(lab.dir.path, "early-state"), "--nats", fresh.url, "--nkey", lab.nkey("agent-a")]);
      const code = await Promise.race([agent.exited(), new Promise((r) => setTimeout(() => r("still running"), 30_000))]);
      await agent.kill();
      assert.notEqual(code, 0, agent.output());
      assert.match(agent.output(), new RegExp(`\\$JS\\.API\\.STREAM\\.CREATE\\.KV_${BUCKETS.agents}`));
      const probe = await Bus.connect({ servers: fresh.url, name: "probe", logger: silentLogger(), nkeySeedFile: lab.nkey("config") });
      await assert.rejects((await probe.jsm()).streams.info(`KV_${BUCKETS.agents}`), /stream not found/, "the agent created nothing");
      await probe.drain();
    } finally {
      await fresh.stop();
    }
  });

  it("attack 4: the watcher may not direct-get the run stream onto host b's cancel subject, create a durable, or reach other streams", async () => {
    const watcher = await lab.as("watcher");
    let refused = 0;
    watcher.onPermissionDenied(() => (refused += 1));
    watcher.nc.publish(`${JS}.DIRECT.GET.${STREAMS.runs}`, new TextEncoder().encode(JSON.stringify({ last_by_subj: `sb.${LAB}.run.>` })), { reply: subjects.hostCancel(LAB, "b") });
    await watcher.nc.flush();
    await waitFor("the refusal", () => refused > 0, 5_000);
    for (const subject of [`${JS}.CONSUMER.DURABLE.CREATE.${STREAMS.runs}.evil`, `${JS}.CONSUMER.CREATE.${STREAMS.runs}`, `${JS}.STREAM.CREATE.EVIL`]) {
      await assert.rejects(jsApi(watcher, subject, { stream_name: STREAMS.runs, config: { durable_name: "evil", deliver_subject: subjects.hostCancel(LAB, "b") } }), deniedPublish(subject));
    }
  });

  it(
    "attack 4: a watcher's push consumer on SB_RUNS delivering run.attempt onto host b's cancel subject cancels nothing (b's agent accepts only requests the coordinator signed)",
    async () => {
      writeFileSync(join(lab.topDir("b"), "extras.d", "20-slow.sh"), 'if [[ "$1 $2" == "stack install" ]]; then sleep 4; fi\n');
      const watcher = await lab.as("watcher");
      try {
        const run = lab.operator(["stack", "--wait", "--json"], 180_000);
        await waitFor("b in stack install", () => lab.recorded().includes("b stack install"), 60_000, 100);
        const created = await jsApi(watcher, `${JS}.CONSUMER.CREATE.${STREAMS.runs}.evil.sb.${LAB}.run.>`, {
          stream_name: STREAMS.runs,
          config: { name: "evil", deliver_subject: subjects.hostCancel(LAB, "b"), deliver_policy: "all", ack_policy: "none", filter_subject: `sb.${LAB}.run.>` },
        });
        assert.equal(created["error"], undefined, JSON.stringify(created));
        const res = await run;
        assert.equal(res.code, 0, res.stdout);
      } finally {
        await jsApi(watcher, `${JS}.CONSUMER.DELETE.${STREAMS.runs}.evil`, {}).catch(() => undefined);
        writeFileSync(join(lab.topDir("b"), "extras.d", "20-slow.sh"), "true\n");
      }
    },
  );

  it("attack 2: agent a's result claiming host b is refused: b counts as done only when it is, its real failure fails the run, no forged fact reaches a hook", async () => {
    writeFileSync(lab.shared, "");
    const slow = join(lab.topDir("b"), "extras.d", "20-slow.sh");
    const reader = join(lab.topDir("a"), "extras.d", "30-read.sh");
    writeFileSync(slow, 'if [[ "$1 $2" == "stack install" ]]; then CONTROLLER_IP=10.0.0.2; stackbus_export CONTROLLER_IP; sleep 3; fi\nif [[ "$1 $2" == "stack post-config" ]]; then exit 7; fi\n');
    writeFileSync(reader, `if [[ "$1 $2" == "stack post-config" ]]; then echo "a read $(stackbus_fact b CONTROLLER_IP)" >> ${lab.shared}; fi\n`);
    try {
      const run = lab.operator(["stack", "--wait", "--json"], 180_000);
      await waitFor("b in stack install", () => lab.recorded().includes("b stack install"), 60_000, 100);
      const runs = jsonLines((await lab.operator(["runs", "--json"])).stdout) as Array<{ runId: string; status: string }>;
      const runId = runs.find((r) => r.status === "running")?.runId ?? "";
      const agentA = await lab.as("agent-a");
      const now = Date.now();
      const forged = { lab: LAB, runId, host: "b", attempt: 1, step: "install", status: "ok", startedAt: now, finishedAt: now, durationMs: 0, hooks: [], failures: [], facts: { CONTROLLER_IP: "6.6.6.6" }, warnings: [] };
      await agentA.publishDurable(subjects.runResult(LAB, runId, "a"), z.record(z.string(), z.unknown()), forged, { msgID: `forged-${runId}` });
      const res = await run;
      assert.equal(res.code, 1, res.stdout);
      const failures = jsonLines(res.stdout).filter((e) => e["kind"] === "event" && e["type"] === "run.finished").flatMap((e) => e["failures"] as Array<{ host: string; step: string; exitCode: number }>);
      assert.deepEqual(failures.map((f) => [f.host, f.step, f.exitCode]), [["b", "post-config", 7]], "b's real failure is the run's");
      const recorded = lab.recorded();
      assert.ok(recorded.includes("a read 10.0.0.2"), `a read the fact b exported, not the forged one: ${recorded.join(" | ")}`);
      assert.ok(recorded.indexOf("a stack post-config") > recorded.indexOf("b stack install"), "a's post-config waited for b's install");
      assert.match(lab.procs.get("coordinator")?.output() ?? "", /refused a step result: host \\?"a\\?" sent a message that claims to be from host \\?"b\\?"/);
    } finally {
      writeFileSync(slow, "true\n");
      writeFileSync(reader, "true\n");
    }
  });

  it("attack 2, heartbeats: agent a beating for a killed host b does not keep b alive: b is lost within the heartbeat timeout", async () => {
    writeFileSync(lab.shared, "");
    const slow = join(lab.topDir("b"), "extras.d", "20-slow.sh");
    writeFileSync(slow, 'if [[ "$1 $2" == "stack install" ]]; then sleep 60; fi\n');
    const agentA = await lab.as("agent-a");
    let beating: NodeJS.Timeout | undefined;
    try {
      const run = lab.operator(["stack", "--wait", "--json", "--heartbeat-timeout", "3s"], 180_000);
      await waitFor("b in stack install", () => lab.recorded().includes("b stack install"), 60_000, 100);
      await lab.procs.get("agent-b")?.kill("SIGKILL");
      const started = Date.now();
      beating = setInterval(() => {
        agentA.nc.publish(subjects.hostHeartbeat(LAB, "a"), new TextEncoder().encode(JSON.stringify({ lab: LAB, host: "b", instance: "x", at: Date.now(), busy: null, hook: null })));
      }, 200);
      const res = await run;
      assert.equal(res.code, 1, res.stdout);
      const lost = jsonLines(res.stdout).find((e) => e["type"] === "host.finished" && e["host"] === "b");
      assert.equal(lost?.["status"], "lost", res.stdout);
      assert.ok(Date.now() - started < 25_000, "b was found lost within the heartbeat timeout, not kept alive by a's forged heartbeats");
    } finally {
      clearInterval(beating);
      writeFileSync(slow, "true\n");
      lab.startAgent("b");
      const operator = await lab.as("operator");
      await waitFor("b's agent back", () => operator.request(subjects.hostPing(LAB, "b"), z.object({}), {}, z.record(z.string(), z.unknown()), { timeoutMs: 500 }).catch(() => undefined), 30_000, 200);
    }
  });

  it("attack 7: a 2 MB line then `false` is a failure with its real exit status; 25 MB without a newline and 100 MB of lines are kept within bounds", async () => {
    const loud = join(lab.topDir("a"), "extras.d", "40-loud.sh");
    writeFileSync(
      loud,
      [
        'if [[ "$1 $2" == "stack pre-install" ]]; then head -c 26214400 /dev/zero | tr "\\0" x; echo; fi',
        'if [[ "$1 $2" == "stack install" ]]; then head -c 104857600 /dev/zero | tr "\\0" y | fold -w 1000; fi',
        'if [[ "$1 $2" == "stack post-config" ]]; then head -c 2097152 /dev/zero | tr "\\0" z; echo; false; fi',
        "",
      ].join("\n"),
    );
    try {
      const res = await lab.operator(["stack", "--wait", "--json"], 300_000);
      assert.equal(res.code, 1, res.stdout.slice(-2000));
      const results = jsonLines(res.stdout).filter((e) => e["kind"] === "result" && e["host"] === "a");
      const failed = results.find((r) => r["step"] === "post-config");
      const f = (failed?.["failures"] as Array<{ hook: string; reason: string; exitCode: number; outputTail: string[] }>)[0];
      assert.deepEqual([failed?.["status"], f?.reason, f?.hook, f?.exitCode], ["failed", "hook", "extras.d/40-loud.sh", 1], "the real exit status, not a timeout");
      assert.ok(Buffer.byteLength(JSON.stringify(f?.outputTail)) <= 70 * 1024, "the output tail is bounded by bytes");
      assert.ok(results.find((r) => r["step"] === "pre-install")?.["status"] === "ok" && results.find((r) => r["step"] === "install")?.["status"] === "ok");
      const runId = String(results[0]?.["runId"]);
      const logs = await lab.operator(["logs", runId, "--host", "a", "--step", "install"], 120_000);
      assert.ok(Buffer.byteLength(logs.stdout) < 10 * 1024 * 1024, `the logs stream kept ${Buffer.byteLength(logs.stdout)} bytes of a hook's 100 MB`);
      assert.match(logs.stdout, /lines \(\d+ bytes\) of extras\.d\/40-loud\.sh's output in install are not kept/);
      const onDisk = spawnSync("bash", ["-c", `du -cb ${join(lab.dir.path, "hosts", "a", "state", "runs", runId)}/*.log | tail -1 | cut -f1`], { encoding: "utf8" }).stdout.trim();
      assert.ok(Number(onDisk) < 16 * 1024 * 1024, `the host's run log holds ${onDisk} bytes`);
    } finally {
      writeFileSync(loud, "true\n");
    }
  });

  it("attack 10: local.conf, the localrc and the run logs are readable by their owner only, in directories only it may enter", async () => {
    const res = await lab.operator(["stack", "--wait", "--json"], 180_000);
    assert.equal(res.code, 0, res.stdout);
    const mode = (path: string) => (Number.parseInt(spawnSync("stat", ["-c", "%a", path], { encoding: "utf8" }).stdout.trim(), 8));
    for (const h of HOSTS) {
      assert.equal(mode(join(lab.topDir(h), "local.conf")), 0o600);
      assert.equal(mode(join(lab.topDir(h), ".localrc.auto")), 0o600);
      const runs = join(lab.dir.path, "hosts", h, "state", "runs");
      assert.equal(mode(runs), 0o700);
      for (const run of execFileSync("ls", [runs], { encoding: "utf8" }).split("\n").filter(Boolean)) {
        assert.equal(mode(join(runs, run)), 0o700, `${run} of ${h}`);
        for (const file of execFileSync("ls", [join(runs, run)], { encoding: "utf8" }).split("\n").filter(Boolean)) {
          assert.equal(mode(join(runs, run, file)) & 0o077, 0, `${run}/${file} of ${h} is readable by others`);
        }
      }
    }
  });

  it("attack 5: agent a cannot make the fetcher read a repository on the controller or probe an address; nothing reaches the object store", async () => {
    let probed = 0;
    const probe = createServer((_req, res) => {
      probed += 1;
      res.writeHead(404).end();
    });
    await new Promise<void>((r) => probe.listen(0, "127.0.0.1", r));
    const agentA = await lab.as("agent-a");
    const before = lab.git.requests.length;
    try {
      const resolve = (url: string) =>
        agentA.request(subjects.pluginsResolve(LAB, "a"), PluginResolveRequestSchema, { name: "loot", url, ref: "master" }, PluginResolveReplySchema, { timeoutMs: 30_000 });
      for (const url of [`file://${lab.git.repoPath("controller-private")}`, lab.git.repoPath("controller-private"), `http://127.0.0.1:${(probe.address() as { port: number }).port}/`]) {
        await assert.rejects(resolve(url), (err: unknown) => err instanceof StackbusError && err.code === ErrorCode.PermissionDenied && /registers no such plugin/.test(err.message));
      }
      const asB = subjects.pluginsResolve(LAB, "b");
      await assert.rejects(agentA.request(asB, PluginResolveRequestSchema, { name: "good", url: lab.goodUrl, ref: "HEAD" }, PluginResolveReplySchema, { timeoutMs: 5_000 }), deniedPublish(asB));
    } finally {
      await new Promise((r) => probe.close(r));
    }
    assert.equal(probed, 0);
    assert.equal(lab.git.requests.filter((r) => r.repo === "controller-private.git").length, 0);
    assert.equal(lab.git.requests.length, before);
    const store = await (await lab.as("fetcher")).objectStore(OBJECT_STORES.plugins);
    const names = (await store.list()).map((o) => o.name);
    assert.deepEqual(names.filter((n) => n.startsWith("loot/")), []);
    assert.ok(!(lab.procs.get("fetcher")?.output() ?? "").includes(ADMIN_PASSWORD));
  });

  it("attack 6 (fetcher and lab show): the plugin URL's password is in no lab show, fetcher reply, fetcher log or plugin index", async () => {
    const show = await lab.operator(["lab", "show", "--json"]);
    assert.equal(show.code, 0, show.stderr);
    assert.ok(show.stdout.includes(lab.goodUrl.replace(`user:${URL_PASSWORD}@`, "***@")), show.stdout);
    const agentA = await lab.as("agent-a");
    const reply = await agentA.request(subjects.pluginsResolve(LAB, "a"), PluginResolveRequestSchema, { name: "good", url: lab.goodUrl, ref: "HEAD" }, PluginResolveReplySchema, { timeoutMs: 30_000 });
    assert.equal(reply.url, lab.goodUrl.replace(`user:${URL_PASSWORD}@`, "***@"));
    const fetcher = await lab.as("fetcher");
    const index = await fetcher.kv(BUCKETS.pluginIndex);
    const stored: string[] = [];
    for await (const key of await index.keys()) stored.push(key, (await index.get(key))?.string() ?? "");
    for (const text of [show.stdout, show.stderr, JSON.stringify(reply), lab.procs.get("fetcher")?.output() ?? "", lab.procs.get("config")?.output() ?? "", ...stored]) {
      assert.ok(!text.includes(URL_PASSWORD), `the URL's password leaked: ${text.slice(0, 300)}`);
    }
  });

  it(
    "attack 6 (agents): the plugin URL's password is in no run log, SB_LOGS message or `stackbus logs` output",
    async () => {
      const res = await lab.operator(["stack", "--wait", "--json"], 180_000);
      const runId = jsonLines(res.stdout).find((e) => typeof e["runId"] === "string")?.["runId"];
      assert.equal(typeof runId, "string", res.stdout);
      const logs = await lab.operator(["logs", String(runId)]);
      assert.equal(logs.code, 0, logs.stderr);
      assert.match(logs.stdout, /resolving plugin good/, "the agent's line about the plugin is there");
      assert.ok(!logs.stdout.includes(URL_PASSWORD), logs.stdout);
      for (const h of HOSTS) {
        const found = spawnSync("grep", ["-rl", URL_PASSWORD, join(lab.dir.path, "hosts", h, "state")], { encoding: "utf8" });
        assert.equal(found.stdout, "", `${h}'s run logs hold the URL's password`);
      }
    },
  );

  it("attack 8: a 512 MB blob of zeros in a 2.4 MB plugin is refused at the fetcher, whose memory stays near its idle size; no host installs it", async () => {
    const repo = lab.git.repoPath("bomb");
    execFileSync("git", ["init", "-q", "--bare", "-b", "master", repo]);
    const blob = execFileSync("bash", ["-c", "head -c 536870912 /dev/zero | git hash-object -w --stdin"], { cwd: repo }).toString().trim();
    const script = execFileSync("git", ["hash-object", "-w", "--stdin"], { cwd: repo, input: "echo bomb\n" }).toString().trim();
    const devstack = execFileSync("git", ["mktree"], { cwd: repo, input: `100755 blob ${script}\tplugin.sh\n` }).toString().trim();
    const tree = execFileSync("git", ["mktree"], { cwd: repo, input: `040000 tree ${devstack}\tdevstack\n100644 blob ${blob}\tzeros\n` }).toString().trim();
    const commit = execFileSync("git", ["-c", "user.name=t", "-c", "user.email=t@t", "commit-tree", tree, "-m", "bomb"], { cwd: repo }).toString().trim();
    execFileSync("git", ["update-ref", "refs/heads/master", commit], { cwd: repo });
    lab.localConf.set("a", `${lab.localConf.get("a")}enable_plugin bomb ${lab.git.repoUrl("bomb")}\n`);
    lab.writeManifest();
    assert.equal((await lab.operator(["lab", "apply", lab.manifestFile])).code, 0);
    const fetcherPid = lab.procs.get("fetcher")?.child.pid;
    const res = await lab.operator(["stack", "--wait", "--json"], 180_000);
    assert.equal(res.code, 1, res.stdout);
    const prepare = jsonLines(res.stdout).find((e) => e["kind"] === "result" && e["host"] === "a" && e["step"] === "prepare");
    const failure = (prepare?.["failures"] as Array<{ message: string }> | undefined)?.[0];
    assert.match(failure?.message ?? "", /plugin bomb: its repository has a file of 536870912 bytes, more than the 67108864 allowed \(plugins\.limits\.maxFileBytes\)/);
    const peak = Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${fetcherPid}/status`, "utf8"))?.[1]) * 1024;
    assert.ok(peak < 400 * 1024 * 1024, `the fetcher's peak resident size was ${Math.round(peak / 1048576)} MB`);
    assert.deepEqual(execFileSync("ls", ["-A", lab.dest("a")], { encoding: "utf8" }).split("\n").filter((n) => n.includes("bomb")), []);
  });

  it("attack 9 (config side): a 5,000-host manifest is refused by lab apply, naming the file and the field", async () => {
    const big = join(lab.dir.path, "huge.yaml");
    writeFileSync(big, `lab: ${LAB}\nhosts:\n${Array.from({ length: 5_000 }, (_, i) => `  - name: h${i}\n    localConfText: ""\n`).join("")}`);
    const res = await lab.operator(["lab", "apply", big]);
    assert.equal(res.code, 2, res.stdout + res.stderr);
    assert.match(res.stderr, /huge\.yaml:\d+: hosts: has 5000 hosts, more than the 1000 a lab may have/);
  });
});
