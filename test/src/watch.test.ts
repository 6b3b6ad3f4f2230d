import assert from "node:assert/strict";
import { execFile, execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { promisify } from "node:util";
import { test } from "node:test";
import { ProgressSchema, type Progress } from "@stackbus/protocol";
import { startGitServer, waitFor } from "@stackbus/testkit";
import { CLI, Lab, runCli } from "./harness.js";

const run = promisify(execFile);
const STEPS = ["prepare", "override_defaults", "source", "pre-install", "install", "post-config", "extra", "test-config"];
const HOSTS = ["ctl", "cmp1", "cmp2"];

function jsonLines(stdout: string): Array<Record<string, unknown>> {
  return stdout.trim().split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as Record<string, unknown>);
}

test("watching a run - watch, status, logs, runs, as people and scripts use them", async (t) => {
  const slow = (seconds: string) => `if [[ "$1" == stack ]]; then sleep ${seconds}; fi\necho "$STACKBUS_HOST says $*"\n`;

  await using git = await startGitServer();
  await git.commit("bigplugin", { "devstack/plugin.sh": "true\n", "data.bin": { content: randomBytes(3 * 1024 * 1024) } });
  const localConf = `[[local|localrc]]\nenable_plugin bigplugin ${git.repoUrl("bigplugin")}\n`;
  await using lab = await Lab.start({
    hosts: HOSTS.map((name, i) => ({ name, wave: i === 0 ? 1 : 2, localConf, files: { "extras.d/10-say.sh": slow("0.05") } })),
  });

  await t.test("watch --json and plain watch show every step of every host and the final status, attached mid-run and after the end", async () => {
    const progress: Progress[] = [];
    const sub = lab.bus.subscribe(`sb.${lab.name}.progress.*.*`, ProgressSchema, (p) => void progress.push(p));
    const started = await lab.cli(["stack", "--json"]);
    assert.equal(started.code, 0, started.stderr);
    const runId = (JSON.parse(started.stdout) as { runId: string }).runId;
    const [live, plain] = await Promise.all([lab.cli(["watch", runId, "--json"]), lab.cli(["watch", runId])]);
    sub.unsubscribe();
    for (const res of [live, plain]) assert.equal(res.code, 0, res.stderr);
    const results = jsonLines(live.stdout).filter((e) => e["kind"] === "result");
    for (const host of HOSTS) for (const step of STEPS) assert.ok(results.some((r) => r["host"] === host && r["step"] === step && r["status"] === "ok"), `${host} ${step}`);
    assert.equal(jsonLines(live.stdout).at(-1)?.["status"], "succeeded");
    for (const host of HOSTS) for (const step of STEPS) assert.match(plain.stdout, new RegExp(`${step} ${host} ok \\(`), `${host} ${step} in plain mode`);
    assert.match(plain.stdout, new RegExp(`run ${runId} succeeded`));
    const late = await lab.cli(["watch", "--json"]);
    assert.deepEqual(jsonLines(late.stdout).filter((e) => e["kind"] === "result").length, HOSTS.length * STEPS.length, "a late watcher replays every result");
    // progress on long work: the plugin download, in bytes
    const fetch = progress.filter((p) => p.hook === "fetch bigplugin" && (p.total ?? 0) > 3 * 1024 * 1024);
    assert.ok(fetch.length > 1, "the plugin download reported its bytes as they came");
    assert.ok(fetch.some((p) => (p.done ?? 0) < (p.total ?? 0)) && fetch.some((p) => p.done === p.total));
    assert.ok(progress.some((p) => p.hook === "extras.d/10-say.sh"), "the hook running now is reported");
  });

  await t.test("the terminal view shows running and finished cells mid-run, then the summary", async () => {
    for (const h of HOSTS) lab.writeHostFiles({ name: h, files: { "extras.d/10-say.sh": slow(h === "cmp2" ? "1.5" : "0.3") } });
    const session = `sbwatch${process.pid}`;
    const started = await lab.cli(["stack", "--json"]);
    const runId = (JSON.parse(started.stdout) as { runId: string }).runId;
    const command = `${process.execPath} ${CLI} watch ${runId} --nats ${lab.nats.url} --lab ${lab.name}; echo WATCH-EXIT=$?; sleep 60`;
    await run("tmux", ["new-session", "-d", "-s", session, "-x", "220", "-y", "50", command]);
    const capture = async () => (await run("tmux", ["capture-pane", "-p", "-t", session])).stdout;
    try {
      const mid = await waitFor("running and finished cells", async () => {
        const screen = await capture();
        return /▶ \d/.test(screen) && /✓ \d/.test(screen) && screen.includes("extras.d/10-say.sh") ? screen : undefined;
      }, 60_000, 100);
      assert.match(mid, new RegExp(`stack ${runId}`));
      assert.match(mid, /hosts done/);
      const end = await waitFor("the summary", async () => {
        const screen = await capture();
        return screen.includes("WATCH-EXIT=") ? screen : undefined;
      }, 90_000, 250);
      assert.match(end, /WATCH-EXIT=0/);
      assert.match(end, /Hooks \(time on each host; wall: the slowest host of each wave\)/);
      assert.match(end, /extras\.d\/10-say\.sh/);
    } finally {
      execFileSync("tmux", ["kill-session", "-t", session]);
    }
  });

  await t.test("at 80x24 the terminal view fits (no line wraps): legend, hosts waiting for wave 1, the running hook's time and last output line, the resume command", async () => {
    lab.writeHostFiles({ name: "ctl", files: { "extras.d/10-say.sh": 'if [[ "$1 $2" == "stack install" ]]; then echo "ctl is installing"; sleep 2; fi\n' } });
    lab.writeHostFiles({ name: "cmp1", files: { "extras.d/10-say.sh": slow("0"), "extras.d/20-break.sh": 'if [[ "$1 $2" == "stack extra" ]]; then false; fi\n' } });
    lab.writeHostFiles({ name: "cmp2", files: { "extras.d/10-say.sh": slow("0") } });
    const session = `sbwatch80${process.pid}`;
    const started = await lab.cli(["stack", "--json"]);
    const runId = (JSON.parse(started.stdout) as { runId: string }).runId;
    const command = `${process.execPath} ${CLI} watch ${runId} --nats ${lab.nats.url} --lab ${lab.name}; echo WATCH-EXIT=$?; sleep 60`;
    await run("tmux", ["new-session", "-d", "-s", session, "-x", "80", "-y", "24", command]);
    // -J joins wrapped lines: a line longer than the pane shows as one line over 80 columns.
    const capture = async () => (await run("tmux", ["capture-pane", "-p", "-J", "-S", "-", "-t", session])).stdout;
    const fits = (screen: string) => {
      for (const line of screen.split("\n")) assert.ok([...line.trimEnd()].length <= 80, `wrapped (${[...line.trimEnd()].length} columns): ${line}`);
    };
    try {
      let last = "";
      const mid = await waitFor("ctl installing while the computes wait", async () => {
        const screen = (last = await capture());
        return /waiting for wave 1 to finish install/.test(screen) && /\| ctl is installing/.test(screen) ? screen : undefined;
      }, 60_000, 100).catch((err: unknown) => {
        throw new Error(`${(err as Error).message}; the pane showed:\n${last}`);
      });
      fits(mid);
      assert.match(mid, /ctl +extras\.d\/10-say\.sh \d+\.\ds {2}\| ctl is installing/, "the hook's own time and the host's last line");
      assert.match(mid, /✓ ok {2}▶ running {2}… waits for an earlier wave/);
      assert.match(mid, /^cmp1 +2( ✓ [\d.]+m?s +){4}… w1/m);
      const end = await waitFor("the end", async () => {
        const screen = await capture();
        return screen.includes("WATCH-EXIT=") ? screen : undefined;
      }, 90_000, 250);
      fits(end);
      assert.match(end, /WATCH-EXIT=1/);
      assert.match(end, new RegExp(`resume with: stackbus stack --resume ${runId} --lab testlab --wait`));
      assert.match(end, /^total +[\d.]+m?s/m);
    } finally {
      execFileSync("tmux", ["kill-session", "-t", session]);
      lab.writeHostFiles({ name: "cmp1", files: { "extras.d/20-break.sh": "true\n" } });
    }
  });

  await t.test("status after a failed run names the failed host, step and hook; logs print exactly what the hook printed", async () => {
    lab.writeHostFiles({ name: "cmp1", files: { "extras.d/10-say.sh": slow("0"), "extras.d/20-break.sh": 'if [[ "$1 $2" == "stack post-config" ]]; then echo "config is wrong"; echo "really wrong" >&2; exit 5; fi\n' } });
    for (const h of ["ctl", "cmp2"]) lab.writeHostFiles({ name: h, files: { "extras.d/10-say.sh": slow("0") } });
    const failed = await lab.cli(["stack", "--wait", "--json"]);
    assert.equal(failed.code, 1);
    const runId = jsonLines(failed.stdout)[0]?.["runId"] as string;
    const status = await lab.cli(["status", runId]);
    assert.equal(status.code, 1);
    assert.match(status.stdout, /cmp1 \/ post-config \/ extras\.d\/20-break\.sh \/ exit 5/);
    const record = JSON.parse((await lab.cli(["status", runId, "--json"])).stdout) as { status: string; failures: Array<{ host: string; step: string; hook: string; exitCode: number; outputTail: string[] }> };
    assert.equal(record.status, "failed");
    assert.deepEqual(record.failures.map((f) => [f.host, f.step, f.hook, f.exitCode]), [["cmp1", "post-config", "extras.d/20-break.sh", 5]]);
    assert.deepEqual(record.failures[0]?.outputTail, ["config is wrong", "really wrong"]);
    const logs = await lab.cli(["logs", runId, "--host", "cmp1", "--step", "post-config", "--hook", "extras.d/20-break.sh"]);
    assert.equal(logs.stdout, "config is wrong\nreally wrong\n");
    const mine = await lab.cli(["logs", runId, "--host", "ctl", "--step", "install"]);
    assert.equal(mine.stdout, "── extras.d/10-say.sh\nctl says stack install\n", "a label names the hook, which no filter fixed");
    const all = await lab.cli(["logs", runId, "--step", "post-config"]);
    assert.equal(all.stdout, "── ctl · extras.d/10-say.sh\nctl says stack post-config\n── cmp1 · extras.d/10-say.sh\ncmp1 says stack post-config\n── cmp1 · extras.d/20-break.sh\nconfig is wrong\nreally wrong\n── cmp2 · extras.d/10-say.sh\ncmp2 says stack post-config\n", "grouped by host, in the order printed");
  });

  await t.test("runs lists the history newest first; logs --follow ends with the run", async () => {
    lab.writeHostFiles({ name: "cmp1", files: { "extras.d/20-break.sh": "true\n" } });
    for (const h of HOSTS) lab.writeHostFiles({ name: h, files: { "extras.d/10-say.sh": slow("0.2") } });
    const started = await lab.cli(["stack", "--json"]);
    const runId = (JSON.parse(started.stdout) as { runId: string }).runId;
    const follow = await lab.cli(["logs", runId, "--host", "cmp2", "--step", "test-config", "--follow"]);
    assert.equal(follow.code, 0, follow.stderr);
    assert.equal(follow.stdout, "── extras.d/10-say.sh\ncmp2 says stack test-config\n");
    const runs = jsonLines((await lab.cli(["runs", "--json"])).stdout) as Array<{ runId: string; kind: string; status: string; durationMs: number; startedAt: number }>;
    assert.equal(runs[0]?.runId, runId);
    assert.equal(runs[0]?.status, "succeeded");
    assert.ok(runs.length >= 4);
    for (let i = 1; i < runs.length; i++) assert.ok((runs[i - 1]?.startedAt ?? 0) >= (runs[i]?.startedAt ?? 0), "newest first");
    assert.ok(runs.every((r) => r.kind === "stack" && typeof r.durationMs === "number"));
    const table = await lab.cli(["runs"]);
    assert.match(table.stdout, new RegExp(runId));
    assert.match(table.stdout, /failed/);
  });

  await t.test("errors for people: no such run, a bad option, and a bus that is not there", async () => {
    const missing = await lab.cli(["watch", "r20000101T000000-0000"]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /no run r20000101T000000-0000 in lab testlab/);
    const bad = await lab.cli(["stack", "--failure-policy", "sometimes"]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /sometimes/);
    const gone = await runCli(["status", "--nats", "nats://127.0.0.1:9", "--lab", "x"]);
    assert.equal(gone.code, 3);
    assert.match(gone.stderr, /cannot reach NATS at nats:\/\/127\.0\.0\.1:9 .*stackbus up/);
  });
});
