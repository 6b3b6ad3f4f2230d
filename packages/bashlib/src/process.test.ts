import assert from "node:assert/strict";
import { chmodSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { test } from "node:test";
import { processAlive, tempDir, waitFor } from "@stackbus/testkit";
import { bash, bashOut, q } from "./bash-harness.js";

test("run_process / stop_process - without systemd", async (t) => {
  using dir = tempDir("sb-proc-");
  const script = join(dir.path, "svc.sh");
  writeFileSync(script, '#!/bin/bash\necho "started $FOO $*"\nexec sleep 30\n');
  chmodSync(script, 0o755);
  const env: Record<string, string> = { STACKBUS_PROCESS_MODE: "background", SERVICE_DIR: join(dir.path, "status"), LOGDIR: join(dir.path, "logs") };

  await t.test("run_process - starts an enabled service in the background with its environment, logs it and records its pid; stop_process ends it", async () => {
    const svc = q(join(dir.path, "svc.sh"));
    const run = await bash(`ENABLED_SERVICES=svc\nrun_process svc "${svc.slice(1, -1)} one two" "" "" "FOO=bar"`, { env });
    assert.equal(run.status, 0, run.stderr);
    const pid = Number(readFileSync(join(dir.path, "status", "svc.pid"), "utf8"));
    assert.ok(processAlive(pid));
    await waitFor("the service's log line", () => existsSync(join(dir.path, "logs", "svc.log")) && readFileSync(join(dir.path, "logs", "svc.log"), "utf8").includes("started bar one two"));
    await bashOut("ENABLED_SERVICES=svc\nstop_process svc", { env });
    await waitFor("the service to end", () => !processAlive(pid));
    assert.ok(!existsSync(join(dir.path, "status", "svc.pid")));
  });

  await t.test("run_process - a service that is not enabled is not started", async () => {
    await bashOut(`ENABLED_SERVICES=other\nrun_process quiet ${q(join(dir.path, "svc.sh"))}`, { env });
    assert.ok(!existsSync(join(dir.path, "status", "quiet.pid")));
  });

  await t.test("run_process - a command without an absolute path dies", async () => {
    const run = await bash("ENABLED_SERVICES=svc\nrun_process svc 'sleep 1'", { env });
    assert.equal(run.status, 1);
    assert.match(run.stderr, /run_process svc: the command "sleep 1" does not start with an absolute path/);
  });
});

test("wait_for_service", async (t) => {
  let answers: number[] = [];
  const server: Server = createServer((_req, res) => {
    res.statusCode = answers.shift() ?? 200;
    res.end();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  await using _server = { [Symbol.asyncDispose]: () => new Promise<void>((resolve) => server.close(() => resolve())) };
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;

  await t.test("wait_for_service - waits while the service answers 503 and returns 0 once it answers otherwise", async () => {
    answers = [503];
    const started = Date.now();
    assert.equal(await bashOut(`wait_for_service 10 ${q(url)}; echo rc=$?`), "rc=0");
    assert.ok(Date.now() - started >= 900);
    assert.deepEqual(answers, []);
  });

  await t.test("wait_for_service - returns 124 when the service never becomes ready in time", async () => {
    answers = Array(50).fill(503);
    assert.equal(await bashOut(`wait_for_service 1 ${q(url)} || echo rc=$?`), "rc=124");
  });
});
