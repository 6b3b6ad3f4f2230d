import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { RunEventSchema, StepResultSchema, STREAMS } from "@stackbus/protocol";
import { decode, withRetry } from "@stackbus/bus";
import { startGitServer, waitFor } from "@stackbus/testkit";
import { Lab } from "./harness.js";

const STACK = ["override_defaults", "source", "stack pre-install", "stack install", "stack post-config", "stack extra", "stack test-config"];
const SESSION = new Set(["override_defaults", "source"]);

/** `<host> <phase>` lines the hooks appended, counted. */
function counts(file: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of readFileSync(file, "utf8").split("\n").filter(Boolean)) {
    const key = line.split(" ").slice(0, -1).join(" ");
    out.set(key, (out.get(key) ?? 0) + 1);
  }
  return out;
}

/** Asserts every host ran every phase exactly once (or, for the session phases, `sessionRuns` times). */
function assertExactlyOnce(file: string, hosts: string[], sessionRuns = 1, tag = ""): void {
  const c = counts(file);
  for (const host of hosts) {
    for (const phase of STACK) {
      const want = SESSION.has(phase) ? sessionRuns : 1;
      assert.equal(c.get(`${host} ${tag}${phase}`) ?? 0, want, `${host} ${tag}${phase} ran ${c.get(`${host} ${tag}${phase}`) ?? 0} times`);
    }
  }
}

const record = (shared: string, tag = "") => `echo "$STACKBUS_HOST ${tag}$* \${EPOCHREALTIME/./}" >> ${JSON.stringify(shared)}\n`;
const jsonLines = (stdout: string) => stdout.trim().split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as Record<string, unknown>);

test("faults - one of three NATS nodes dies mid-run", async (t) => {
  await using lab = await Lab.start({ cluster: true, hosts: ["h1", "h2", "h3"].map((name) => ({ name })) });
  for (const h of lab.hosts) lab.writeHostFiles({ name: h.name, files: { "extras.d/10-rec.sh": `[[ $1 == stack ]] && sleep 0.4\n${record(lab.shared)}` } });

  await t.test("the run completes, every hook runs once, and no event is lost when the runs stream's leader is killed", async () => {
    const run = lab.cli(["stack", "--wait", "--json"], 180_000);
    await waitFor("the run to reach pre-install", () => readFileSync(lab.shared, "utf8").includes("stack pre-install"), 60_000);
    const jsm = await lab.bus.jsm();
    const leader = (await withRetry("stream info", () => jsm.streams.info(STREAMS.runs))).cluster?.leader ?? "";
    const index = Number(leader.replace("sb-n", ""));
    assert.ok(lab.cluster?.servers[index], `leader ${leader} is one of the three nodes`);
    await lab.cluster?.servers[index]?.kill("SIGKILL");
    const res = await run;
    assert.equal(res.code, 0, res.stdout.slice(-2000) + res.stderr);
    assertExactlyOnce(lab.shared, ["h1", "h2", "h3"]);
    // Everything the run stored is there: a result per host per step, and the end.
    const runId = jsonLines(res.stdout)[0]?.["runId"] as string;
    // Results reach the coordinator at once; an agent whose durable store hit the leader
    // election keeps retrying (same message id) until the stream has it.
    const readResults = async () => {
      const stored = await lab.bus.readStream(STREAMS.runs, `sb.${lab.name}.run.${runId}.>`);
      return { stored, results: stored.filter((m) => m.subject.includes(".result.")).map((m) => decode(m.subject, StepResultSchema, m.data)) };
    };
    const { stored, results } = await waitFor("every result stored", async () => {
      const got = await readResults();
      return got.results.length >= 3 * 8 ? got : undefined;
    }, 60_000, 500);
    assert.equal(new Set(results.map((r) => `${r.host}/${r.step}`)).size, 3 * 8);
    assert.equal(results.length, 3 * 8, "no result stored twice");
    const events = stored.filter((m) => m.subject.endsWith(".event")).map((m) => decode(m.subject, RunEventSchema, m.data));
    assert.equal(events.filter((e) => e.type === "step.finished").length, 8);
    assert.equal(events.at(-1)?.type, "run.finished");
  });
});

test("faults - processes killed mid-run, on one nats-server", async (t) => {
  const hosts = ["a", "b", "c"];
  await using git = await startGitServer();
  await git.commit("plug", { "devstack/plugin.sh": "true\n" });
  await using lab = await Lab.start({
    hosts: hosts.map((name) => ({ name, localConf: `[[local|localrc]]\nenable_plugin plug ${git.repoUrl("plug")}\n` })),
    agentEnv: { STACKBUS_PLUGIN_REQUEST_TIMEOUT: "1500" },
  });
  const fresh = (files: (host: string) => Record<string, string>) => {
    writeFileSync(lab.shared, "");
    for (const h of hosts) {
      rmSync(join(lab.topDir(h), "extras.d"), { recursive: true, force: true });
      lab.writeHostFiles({ name: h, files: files(h) });
    }
  };

  await t.test("the coordinator killed mid-run and started again completes the run; a waiting `stack --wait` reports it; hooks run once", async () => {
    fresh(() => ({ "extras.d/10-rec.sh": `[[ $1 == stack ]] && sleep 0.3\n${record(lab.shared)}` }));
    const run = lab.cli(["stack", "--wait"], 120_000);
    await waitFor("pre-install", () => readFileSync(lab.shared, "utf8").includes("stack pre-install"), 60_000);
    await lab.procs.get("coordinator")?.kill("SIGKILL");
    await new Promise((r) => setTimeout(r, 1_000));
    lab.startService("coordinator");
    const res = await run;
    assert.equal(res.code, 0, res.stdout + res.stderr);
    assert.match(res.stdout, /succeeded/);
    assertExactlyOnce(lab.shared, hosts);
  });

  await t.test("an agent killed mid-phase fails as lost; restarted, the resume completes and no finished step runs again", async () => {
    const done = join(lab.dir.path, "b-done");
    fresh((h) => ({
      "extras.d/10-slow.sh": h === "b" ? `if [[ "$1 $2" == "stack install" && ! -f ${JSON.stringify(done)} ]]; then sleep 30.25; fi\n` : "true\n",
      "extras.d/20-rec.sh": record(lab.shared),
    }));
    const run = lab.cli(["stack", "--wait", "--json", "--heartbeat-timeout", "2s"], 120_000);
    await waitFor("b in install", () => psHas("sleep 30.25"), 60_000);
    await lab.procs.get("agent-b")?.kill("SIGKILL");
    const res = await run;
    assert.equal(res.code, 1);
    const lost = jsonLines(res.stdout).find((e) => e["type"] === "host.finished" && e["host"] === "b");
    assert.deepEqual([lost?.["status"], lost?.["step"]], ["lost", "install"]);
    const runId = jsonLines(res.stdout)[0]?.["runId"] as string;
    writeFileSync(done, "");
    lab.startAgent("b");
    await lab.waitForAgents(["b"]);
    await waitFor("the restarted agent to end its predecessor's hook", () => !psHas("sleep 30.25"), 10_000);
    const resumed = await lab.cli(["stack", "--resume", runId, "--wait"], 120_000);
    assert.equal(resumed.code, 0, resumed.stdout + resumed.stderr);
    // override_defaults and source rebuild each host's session on resume (twice, by design); every other phase once.
    assertExactlyOnce(lab.shared, hosts, 2);
  });

  await t.test("the fetcher killed during a fetch: the hosts ask again and the run completes", async () => {
    fresh(() => ({ "extras.d/10-rec.sh": record(lab.shared) }));
    await git.commit("plug", { "devstack/plugin.sh": record(lab.shared, "plug "), "padding.txt": "x".repeat(100_000) });
    // Without reclone a host keeps the checkout it has (DevStack's rule): start from none.
    for (const h of hosts) rmSync(join(lab.hostDir(h), "stack", "plug"), { recursive: true, force: true });
    const before = git.requests.length;
    git.setDelay(600);
    try {
      const run = lab.cli(["stack", "--wait", "--json"], 120_000);
      await waitFor("the fetcher to be fetching", () => git.requests.length > before, 60_000, 20);
      await lab.procs.get("fetcher")?.kill("SIGKILL");
      lab.startService("fetcher");
      const res = await run;
      assert.equal(res.code, 0, res.stdout + res.stderr);
      const runId = jsonLines(res.stdout)[0]?.["runId"] as string;
      const prepare = await lab.cli(["logs", runId, "--step", "prepare"]);
      assert.match(prepare.stdout, /the plugin fetcher did not answer for plug .*asking again/, "the hosts asked again");
      assertExactlyOnce(lab.shared, hosts);
      const plugin = [...counts(lab.shared).entries()].filter(([k]) => k.includes(" plug stack "));
      assert.equal(plugin.length, hosts.length * 5, "the plugin's plugin.sh ran in every stack phase on every host");
      assert.ok(plugin.every(([, n]) => n === 1));
    } finally {
      git.setDelay(0);
    }
  });

  await t.test("a DEST that cannot be written fails the host at prepare with an error naming the path", async () => {
    fresh(() => ({ "extras.d/10-rec.sh": record(lab.shared) }));
    const dest = join(lab.hostDir("c"), "stack");
    rmSync(dest, { recursive: true, force: true });
    writeFileSync(dest, "a file where DEST should be a directory\n");
    try {
      const res = await lab.cli(["stack", "--wait", "--json"], 120_000);
      assert.equal(res.code, 1);
      const failed = jsonLines(res.stdout).find((e) => e["kind"] === "result" && e["host"] === "c" && e["step"] === "prepare");
      assert.equal(failed?.["status"], "failed");
      assert.ok(JSON.stringify(failed?.["failures"]).includes(dest), JSON.stringify(failed?.["failures"]));
      assert.equal(counts(lab.shared).size, 0, "no host went past prepare (abort)");
    } finally {
      rmSync(dest, { force: true });
    }
  });
});

function psHas(text: string): boolean {
  return execFileSync("ps", ["-eo", "args"]).toString().split("\n").some((l) => l.trim() === text);
}

test("faults - the coordinator stops on SIGTERM within seconds, also mid-run with the bus gone", async () => {
  await using lab = await Lab.start({ hosts: [{ name: "a" }] });
  lab.writeHostFiles({ name: "a", files: { "extras.d/10-slow.sh": `[[ "$1 $2" == "stack install" ]] && sleep 30\n${record(lab.shared)}` } });
  const run = lab.cli(["stack"], 30_000);
  assert.equal((await run).code, 0);
  await waitFor("a in stack install", () => readFileSync(lab.shared, "utf8").includes("stack pre-install"), 60_000);
  await lab.nats.kill("SIGKILL");
  const coordinator = lab.procs.get("coordinator");
  assert.ok(coordinator);
  const t0 = Date.now();
  coordinator.child.kill("SIGTERM");
  const code = await Promise.race([coordinator.exited(), new Promise((r) => setTimeout(() => r("still running"), 20_000))]);
  assert.notEqual(code, "still running", `the coordinator did not stop on SIGTERM: ${coordinator.output().slice(-1000)}`);
  assert.ok(Date.now() - t0 < 15_000, `it took ${Date.now() - t0} ms`);
});
