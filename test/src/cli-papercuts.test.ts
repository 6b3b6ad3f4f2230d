import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { test } from "node:test";
import { RunEventSchema, StepResultSchema } from "@stackbus/protocol";
import { tempDir, track, untrack, waitFor } from "@stackbus/testkit";
import { CLI, Lab, REPO_ROOT, runCli, spawnCli } from "./harness.js";

const run = promisify(execFile);

function runIdOf(output: string): string {
  const m = /run (r\d{8}T\d{6}-[0-9a-f]+)/.exec(output);
  assert.ok(m, `no run id in: ${output}`);
  return m[1] as string;
}

/** Runs `stackbus ARGS | head -1` in bash: what stackbus printed on stderr and its exit status. */
async function piped(args: string[]): Promise<{ first: string; stderr: string; status: number }> {
  const quoted = [process.execPath, CLI, ...args].map((a) => `'${a}'`).join(" ");
  const script = `${quoted} 2>"$ERR" | head -1; echo "status=\${PIPESTATUS[0]}"`;
  const dir = tempDir("sb-pipe-");
  try {
    const err = join(dir.path, "stderr");
    const { stdout } = await run("bash", ["-c", script], { env: { ...process.env, ERR: err, NO_COLOR: "1" } });
    const lines = stdout.trimEnd().split("\n");
    return { first: lines[0] ?? "", stderr: readFileSync(err, "utf8"), status: Number(/status=(\d+)/.exec(lines.at(-1) ?? "")?.[1]) };
  } finally {
    dir.remove();
  }
}

test("papercuts - the CLI as an operator meets it", async (t) => {
  // A hook that prints more than a pipe holds, so that `| head -1` closes the pipe on the CLI.
  const loud = (word: string) => `if [[ "$1 $2" == "stack install" ]]; then for i in $(seq 1 6000); do echo "${word} $STACKBUS_HOST line $i of a long install"; done; fi\n`;
  await using lab = await Lab.start({ hosts: [{ name: "ctl", wave: 1, files: { "extras.d/10-loud.sh": loud("first") } }, { name: "cmp1", wave: 2 }] });

  await t.test("stackbus ... | head -1 ends quietly: no stack trace on EPIPE, exit 0", async () => {
    const done = await lab.cli(["stack", "--wait"]);
    assert.equal(done.code, 0, done.stdout + done.stderr);
    const bus = ["--nats", lab.natsUrl, "--lab", lab.name];
    for (const args of [["logs", ...bus], ["runs", ...bus], ["watch", ...bus], ["--help"]]) {
      const out = await piped(args);
      assert.equal(out.stderr, "", `${args.join(" ")}: ${out.stderr}`);
      assert.equal(out.status, 0, args.join(" "));
      assert.notEqual(out.first, "", args.join(" "));
    }
  });

  await t.test("logs without a run id prints the latest run, like status", async () => {
    lab.writeHostFiles({ name: "ctl", files: { "extras.d/10-loud.sh": 'if [[ "$1 $2" == "stack install" ]]; then echo "second $STACKBUS_HOST"; fi\n' } });
    const second = await lab.cli(["stack", "--wait"]);
    assert.equal(second.code, 0, second.stdout + second.stderr);
    const logs = await lab.cli(["logs", "--host", "ctl", "--step", "install"]);
    assert.equal(logs.code, 0, logs.stderr);
    assert.match(logs.stdout, /second ctl/);
    assert.doesNotMatch(logs.stdout, /first ctl/);
    const status = await lab.cli(["status"]);
    assert.match(status.stdout, new RegExp(runIdOf(second.stdout)));
  });

  await t.test("Ctrl-C on stack --wait stops following, says the run goes on and how to follow or cancel it, and the run does go on", async () => {
    lab.writeHostFiles({ name: "ctl", files: { "extras.d/10-loud.sh": 'if [[ "$1 $2" == "stack install" ]]; then echo "ctl installs slowly"; sleep 3; fi\n' } });
    const waiting = spawnCli("stack-wait", ["stack", "--wait", "--nats", lab.natsUrl, "--lab", lab.name], { NO_COLOR: "1" });
    const runId = await waitFor("the install step", () => (/ctl installs slowly|install/.test(waiting.output()) && /run (r\S+)/.test(waiting.output()) ? runIdOf(waiting.output()) : undefined), 30_000, 50);
    waiting.child.kill("SIGINT");
    const code = await waiting.exited();
    await waiting.kill();
    assert.equal(code, 130, waiting.output());
    assert.match(waiting.output(), new RegExp(`stopped following; run ${runId} goes on\\. Follow it: stackbus watch ${runId} --lab testlab {3}cancel it: stackbus cancel ${runId} --lab testlab`));
    assert.doesNotMatch(waiting.output(), /\n\s+at /, "no stack trace");
    const watched = await lab.cli(["watch", runId]);
    assert.equal(watched.code, 0, watched.stdout + watched.stderr);
    assert.equal((await lab.record(runId))?.status, "succeeded");
  });

  await t.test("usage errors exit 2, as --help documents", async () => {
    for (const args of [["nonsense"], ["stack", "--bogus"], ["stack", "--max-fail", "many"], ["stack", "--hosts", "a.b"], ["stack", "--phase-timeout", "soon"], ["logs", "--attempt", "7"], ["stack", "--from", "install"]]) {
      const res = await lab.cli(args);
      assert.equal(res.code, 2, `${args.join(" ")}: ${res.stdout}${res.stderr}`);
      assert.match(res.stderr, /^error: /, args.join(" "));
    }
    const badName = await runCli(["lab", "delete", "a.b", "--nats", lab.natsUrl]);
    assert.equal(badName.code, 2, badName.stderr);
    const help = await runCli(["--help"]);
    assert.match(help.stdout, /2 {2}usage error/);
  });

  await t.test("services and agents log for people in a terminal, JSON lines when not", async () => {
    const args = [CLI, "agent", "--host", "nohost", "--lab", "notapplied", "--nats", lab.natsUrl, "--state-dir", join(lab.dir.path, "nohost-state")];
    // `script` gives the agent a terminal; the agent waits for its lab, warning at once.
    const tty = spawn("script", ["-qfec", [process.execPath, ...args].join(" "), "/dev/null"], { stdio: ["pipe", "pipe", "pipe"], env: { ...process.env, STACKBUS_LOG_LEVEL: "info" } });
    track(tty);
    let screen = "";
    tty.stdout.on("data", (c: Buffer) => (screen += c.toString()));
    const plain = spawnCli("agent-json", args.slice(1), { STACKBUS_LOG_LEVEL: "info" });
    try {
      await waitFor("the terminal's warning", () => screen.includes("is not applied yet"), 30_000, 50);
      await waitFor("the JSON warning", () => plain.output().includes("is not applied yet"), 30_000, 50);
      const line = screen.split("\n").find((l) => l.includes("is not applied yet")) ?? "";
      assert.match(line, /^\[\d\d:\d\d:\d\d\.\d{3}\] .*WARN.* \(stackbus-agent\): .*lab "notapplied" is not applied yet/);
      assert.doesNotMatch(screen, /"level":/);
      const json = plain.output().split("\n").find((l) => l.includes("is not applied yet")) ?? "";
      assert.equal((JSON.parse(json) as { level: number; host: string }).host, "nohost");
    } finally {
      tty.kill("SIGKILL");
      untrack(tty);
      await plain.kill();
    }
  });

  const labDelete = () => runCli(["lab", "delete", lab.name, "--nats", lab.natsUrl]);
  await t.test("lab delete removes the lab (refused while a run goes on); lab apply brings it back", async () => {
    lab.writeHostFiles({ name: "ctl", files: { "extras.d/10-loud.sh": 'if [[ "$1 $2" == "stack install" ]]; then sleep 60; fi\n' } });
    const started = await lab.cli(["stack"]);
    const runId = runIdOf(started.stdout);
    await waitFor("the run going", async () => (await lab.record(runId))?.status === "running", 30_000, 50);
    const refused = await labDelete();
    assert.equal(refused.code, 1, refused.stdout + refused.stderr);
    assert.match(refused.stderr, new RegExp(`lab testlab has a run going \\(${runId}\\): cancel it first \\(stackbus cancel ${runId} --lab testlab\\)`));
    assert.equal((await lab.cli(["cancel", runId])).code, 0);
    assert.equal((await lab.cli(["watch", runId])).code, 1, "canceled");
    const deleted = await labDelete();
    assert.equal(deleted.code, 0, deleted.stdout + deleted.stderr);
    assert.match(deleted.stdout, /lab testlab: deleted \(it was at revision \d+\)/);
    const shown = await lab.cli(["lab", "show"]);
    assert.notEqual(shown.code, 0);
    assert.match(shown.stderr, /testlab/);
    const again = await labDelete();
    assert.equal(again.code, 1);
    assert.match(again.stderr, /lab testlab is not applied: nothing to delete/);
    assert.match((await lab.cli(["runs"])).stdout, new RegExp(runId), "its runs stay listed");
    await lab.apply(lab.manifest());
    assert.equal((await lab.cli(["lab", "show"])).code, 0);
  });
});

test("papercuts - the demo's last lines name paths that exist", async () => {
  const dir = tempDir("sb-demo-");
  try {
    const demo = await runCli(["demo", "--data-dir", join(dir.path, "demo")], {}, 240_000);
    assert.equal(demo.code, 0, demo.stdout + demo.stderr);
    const last = demo.stdout.trimEnd().split("\n").at(-1) ?? "";
    const paths = [...last.matchAll(/(\/\S+?)(?=[;,]|\s|$)/g)].map((m) => m[1] as string);
    assert.ok(paths.length >= 2, last);
    for (const p of paths) for (const host of ["controller", "compute1", "compute2"]) assert.ok(existsSync(p.replace("<host>", host)), `${p} (${host}) in: ${last}`);
  } finally {
    dir.remove();
  }
});

test("docs/events.md - every example line parses with its schema, and host.finished agrees with its table", () => {
  const doc = readFileSync(join(REPO_ROOT, "docs/events.md"), "utf8");
  const row = /^\| `host\.finished` \| .*`status` \(([^)]*)\).*`decided: true`/m.exec(doc);
  assert.ok(row, "the table's host.finished row");
  const statuses = [...(row[1] ?? "").matchAll(/`(\w+)`/g)].map((m) => m[1]);
  const example = doc.slice(doc.indexOf("## Example"));
  const lines = example.split("\n").filter((l) => l.startsWith("{"));
  assert.ok(lines.length >= 3);
  let hostFinished = 0;
  for (const line of lines) {
    const { kind, ...rest } = JSON.parse(line) as { kind: string } & Record<string, unknown>;
    if (kind === "result") StepResultSchema.parse(rest);
    else {
      const event = RunEventSchema.parse(rest);
      if (event.type === "host.finished") {
        hostFinished++;
        assert.equal(event.decided, true, line);
        assert.ok(statuses.includes(event.status), `${event.status} is one of ${statuses.join(", ")}`);
      }
    }
  }
  assert.ok(hostFinished > 0, "the example shows a host.finished event");
});
