import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { z } from "zod";
import { ErrorCode, StackbusError, subjects } from "@stackbus/protocol";
import { waitFor } from "@stackbus/testkit";
import { Lab, runCli } from "./harness.js";

const jsonLines = (stdout: string) => stdout.trim().split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as Record<string, unknown>);

test("bad input - refused clearly, nothing lost, every service still up", async (t) => {
  await using lab = await Lab.start({ hosts: [{ name: "h1" }, { name: "h2" }] });
  for (const h of lab.hosts) lab.writeHostFiles({ name: h.name, files: { "extras.d/10-rec.sh": `echo "$STACKBUS_HOST $*" >> ${JSON.stringify(lab.shared)}\n` } });

  await t.test("answers invalid JSON and wrong schemas on every request subject of every service with BAD_MESSAGE naming the subject", async () => {
    const l = lab.name;
    const requestSubjects = [
      subjects.configApply(l),
      subjects.configGet(l, "h1"),
      subjects.configShow(l),
      subjects.configPluginSettings(l),
      subjects.labList(),
      subjects.pluginsResolve(l, "h1"),
      subjects.runStart(l),
      subjects.runCancel(l),
      subjects.hostCommand(l, "h1"),
      subjects.hostCancel(l, "h1"),
      subjects.hostPing(l, "h1"),
      subjects.hostPlan(l, "h1"),
    ];
    const bad = ["this is not json", "[1, 2, 3]", JSON.stringify({ kind: 42, name: ["x"], runId: "a.b", step: "nowhere" })];
    for (const subject of requestSubjects) {
      for (const payload of bad) {
        const reply = await lab.bus.nc.request(subject, new TextEncoder().encode(payload), { timeout: 5_000 });
        const parsed = JSON.parse(new TextDecoder().decode(reply.data)) as { ok: boolean; error?: { code: string; message: string } };
        // requests with no required field accept any object (unknown keys are dropped): the third payload is valid for those
        if (parsed.ok) {
          const optionalOnly = [subjects.configShow(l), subjects.labList(), subjects.hostPing(l, "h1"), subjects.configPluginSettings(l), subjects.configGet(l, "h1")];
          assert.ok(optionalOnly.includes(subject) && payload.startsWith("{"), `${subject} accepted ${payload}`);
          continue;
        }
        assert.ok([ErrorCode.BadMessage, ErrorCode.InvalidName].includes(parsed.error?.code as never), `${subject}: ${parsed.error?.code}`);
        assert.match(parsed.error?.message ?? "", new RegExp(subject.replace(/\./g, "\\.").split("\\.").slice(0, 3).join("\\.")), `${subject}: ${parsed.error?.message}`);
      }
    }
  });

  await t.test("logs a malformed result or heartbeat and goes on", async () => {
    lab.bus.nc.publish(`sb.${lab.name}.run.rjunk.result.h1`, new TextEncoder().encode("{not json"));
    lab.bus.nc.publish(subjects.hostHeartbeat(lab.name, "h1"), new TextEncoder().encode(JSON.stringify({ host: 1 })));
    await lab.bus.flush();
    const coordinator = lab.procs.get("coordinator");
    await waitFor("the coordinator's warnings", () => {
      const out = coordinator?.output() ?? "";
      return out.includes(`sb.${lab.name}.run.rjunk.result.h1`) && out.includes(subjects.hostHeartbeat(lab.name, "h1")) && out.includes("BAD_MESSAGE");
    }, 10_000);
  });

  await t.test("refuses an oversized message before it reaches the service", async () => {
    await assert.rejects(
      lab.bus.request(subjects.configApply(lab.name), z.object({ file: z.string(), text: z.string(), files: z.record(z.string(), z.string()) }), { file: "huge.yaml", text: "#".repeat(2 * 1024 * 1024), files: {} }, z.unknown()),
      (err: unknown) => {
        assert.ok(err instanceof StackbusError);
        assert.equal(err.code, ErrorCode.TooLarge);
        assert.match(err.message, /config\.apply is \d+ bytes, more than the NATS server accepts/);
        return true;
      },
    );
  });

  await t.test("refuses hostile names: subject wildcards for hosts, ../x for a plugin", async () => {
    const star = await lab.cli(["stack", "--hosts", "h1,*"]);
    assert.equal(star.code, 2);
    assert.match(star.stderr, /host name "\*" may not contain the subject wildcards/);
    const file = join(lab.dir.path, "hostile.yaml");
    writeFileSync(join(lab.dir.path, "hostile.conf"), "[[local|localrc]]\nenable_plugin ../x https://example.org/x\n");
    writeFileSync(file, "lab: hostile\nhosts:\n  - name: '>'\n    localConf: hostile.conf\n  - name: a.b\n    localConf: hostile.conf\n");
    const res = await runCli(["lab", "validate", file]);
    assert.equal(res.code, 2);
    assert.match(res.stderr, /hosts\[0\]\.name: ">" may not contain the subject wildcards/);
    assert.match(res.stderr, /hosts\[1\]\.name: "a\.b" may not contain "\."/);
    assert.match(res.stderr, /hostile\.conf:2: enable_plugin: plugin name "\.\.\/x" may not contain/);
  });

  await t.test("a plugin URL with shell metacharacters never reaches a shell: the host fails naming the plugin and the URL", async () => {
    const marker = join(lab.dir.path, "pwned");
    for (const url of [`http://127.0.0.1:9/x;touch ${marker}`, `/tmp/none$(touch ${marker})`, `file:///tmp/none\`touch ${marker}\``]) {
      lab.hosts[0]!.localConf = `[[local|localrc]]\nenable_plugin evil '${url}'\n`;
      lab.hosts[1]!.localConf = "[[local|localrc]]\n";
      await lab.apply(lab.manifest());
      const res = await lab.cli(["stack", "--wait", "--json"]);
      assert.equal(res.code, 1, url);
      const prepare = jsonLines(res.stdout).find((e) => e["kind"] === "result" && e["host"] === "h1" && e["step"] === "prepare");
      const failure = (prepare?.["failures"] as Array<{ message: string }> | undefined)?.[0];
      assert.ok(failure, `h1 failed at prepare for ${url}`);
      assert.match(failure.message, /evil/);
      assert.ok(failure.message.includes(url) || failure.message.includes(url.replace(/^file:\/\//, "")), failure.message);
      assert.equal(existsSync(marker), false, `no shell ran ${url}`);
    }
  });

  await t.test("a hook that starts a daemon keeping stdout open: the phase completes and the stray process is reported", async () => {
    lab.hosts[0]!.localConf = "[[local|localrc]]\n";
    await lab.apply(lab.manifest());
    lab.writeHostFiles({ name: "h1", files: { "extras.d/20-daemon.sh": 'if [[ "$1 $2" == "stack install" ]]; then sleep 1000.31 & fi\n' } });
    try {
      const res = await lab.cli(["stack", "--wait", "--json"], 60_000);
      assert.equal(res.code, 0, res.stderr);
      const install = jsonLines(res.stdout).find((e) => e["kind"] === "result" && e["host"] === "h1" && e["step"] === "install");
      assert.match(JSON.stringify(install?.["warnings"]), /\(sleep 1000\.31\) started by a hook of stack install is still running/);
    } finally {
      execFileSync("pkill", ["-f", "^sleep 1000.31$"]);
      lab.writeHostFiles({ name: "h1", files: { "extras.d/20-daemon.sh": "true\n" } });
    }
  });

  await t.test("after all of it, every service is still up and a run succeeds with every hook once", async () => {
    for (const [name, proc] of lab.procs) assert.equal(proc.child.exitCode, null, `${name} is still running`);
    writeFileSync(lab.shared, "");
    const res = await lab.cli(["stack", "--wait"]);
    assert.equal(res.code, 0, res.stdout + res.stderr);
    const lines = (await import("node:fs")).readFileSync(lab.shared, "utf8").trim().split("\n");
    assert.equal(lines.length, 2 * 7);
    assert.equal(new Set(lines).size, 14);
  });
});
