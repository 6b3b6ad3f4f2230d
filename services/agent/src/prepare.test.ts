import assert from "node:assert/strict";
import { mkdirSync, readdirSync, readFileSync, utimesSync, writeFileSync } from "node:fs";
import { userInfo } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { silentLogger } from "@stackbus/bus";
import { tempDir, waitFor } from "@stackbus/testkit";
import type { HostConfig } from "@stackbus/protocol";
import { openSession, SpareSession, stackUserDefault, type HostDirs } from "./prepare.js";
import type { BashSession } from "./session.js";

describe("spare session - the next run's shell, opened while the host is idle", () => {
  const dir = tempDir("sb-spare-");
  const devstack = join(dir.path, "devstack-checkout");
  const dirs: HostDirs = { topDir: join(dir.path, "top"), dest: join(dir.path, "stack"), stateDir: join(dir.path, "state"), devstackDir: devstack };
  const opened: BashSession[] = [];
  after(() => {
    for (const s of opened) s.kill("SIGKILL");
    dir.remove();
  });
  mkdirSync(devstack, { recursive: true });
  const writeFunctions = (version: string, mtime: number) => {
    const file = join(devstack, "functions");
    writeFileSync(file, `LIBRARY_VERSION=${version}\n`);
    utimesSync(file, mtime, mtime);
  };

  const read = async (s: BashSession, name: string) => (await s.query(`__sb_report v "\${${name}-unset}"`))["v"];

  it("hands a warmed shell to one run only, with the library sourced and nothing of an earlier run", async () => {
    writeFunctions("1", 1_000_000);
    const spare = new SpareSession({ dirs, lab: "lab", host: "h1", logger: silentLogger() });
    spare.warm();
    const first = await spare.take(() => undefined);
    opened.push(first);
    assert.equal(await read(first, "LIBRARY_VERSION"), "1");
    assert.equal(await read(first, "STACKBUS_HOST"), "h1");
    assert.equal(await first.eval("LEFT_BY_RUN_ONE=yes"), 0);

    spare.warm();
    const second = await spare.take(() => undefined);
    opened.push(second);
    assert.notEqual(second.pid, first.pid, "each run gets its own shell");
    assert.equal(await read(second, "LEFT_BY_RUN_ONE"), "unset");
    spare.close();
  });

  it("throws a spare away when the library changed after it was opened, and sends output where the run says", async () => {
    writeFunctions("1", 1_000_000);
    const spare = new SpareSession({ dirs, lab: "lab", host: "h1", logger: silentLogger() });
    spare.warm();
    await new Promise((r) => setTimeout(r, 200));
    writeFunctions("2", 2_000_000);
    const lines: string[] = [];
    const s = await spare.take((_stream, _hook, text) => void lines.push(text));
    opened.push(s);
    assert.equal(await read(s, "LIBRARY_VERSION"), "2", "a DevStack checkout updated between runs is what the run sources");
    assert.equal(await s.eval("echo from-the-run"), 0);
    await waitFor("the run's output", () => lines.includes("from-the-run"), 5_000);
    spare.close();
  });

  it("a run whose spare died while the host was idle gets a shell of its own", async () => {
    writeFunctions("3", 3_000_000);
    const before = new Set(childShells());
    const spare = new SpareSession({ dirs, lab: "lab", host: "h1", logger: silentLogger() });
    spare.warm();
    const pid = await waitFor("the spare shell", () => childShells().find((p) => !before.has(p)), 5_000);
    await new Promise((r) => setTimeout(r, 300));
    process.kill(pid, "SIGKILL");
    const config = hostConfig("");
    const runDir = join(dir.path, "run");
    const { session } = await openSession({ dirs, config, runId: "r1", runDir, logger: silentLogger(), onOutput: () => undefined, spare });
    opened.push(session);
    assert.notEqual(session.pid, pid);
    assert.equal(await read(session, "LIBRARY_VERSION"), "3");
    assert.equal(await read(session, "STACKBUS_RUN"), "r1");
    spare.close();
  });
});

describe("session - the variables a hook session starts with (helper library)", () => {
  const dir = tempDir("sb-vars-");
  const dirs: HostDirs = { topDir: join(dir.path, "top"), dest: join(dir.path, "stack"), stateDir: join(dir.path, "state") };
  const opened: BashSession[] = [];
  after(() => {
    for (const s of opened) s.kill("SIGKILL");
    dir.remove();
  });
  const open = async (localrc: string, runId: string) => {
    const { session } = await openSession({ dirs, config: hostConfig(localrc), runId, runDir: join(dir.path, runId), logger: silentLogger(), onOutput: () => undefined, writeLocalConf: false });
    opened.push(session);
    return session;
  };

  it("STACK_USER is stackrc's default: stack when the agent runs as root, else the agent's user; the localrc may set it", async () => {
    assert.equal(stackUserDefault(0), "stack");
    assert.equal(stackUserDefault(4321), userInfo().username);
    const expected = process.geteuid?.() === 0 ? "stack" : userInfo().username;
    assert.equal((await (await open("", "r1")).query('__sb_report u "$STACK_USER"'))["u"], expected);
    assert.equal((await (await open("STACK_USER=alice\n", "r2")).query('__sb_report u "$STACK_USER"'))["u"], "alice");
  });
});

/** A host's configuration with this localrc and nothing else. */
function hostConfig(localrc: string): HostConfig {
  return {
    lab: "lab",
    host: "h1",
    revision: 1,
    wave: 1,
    labels: {},
    localConf: [],
    localrc,
    blocks: [],
    plugins: [],
    diagnostics: [],
    runner: "hooks",
    devstackUser: "stack",
    finally: [],
    unstackErrors: "warn",
    pluginSettings: { order: "registration", reclone: false, offline: false, mirrors: [], allowSchemes: ["https", "http", "file", "path"] },
  };
}

/** Pids of this process's child processes. */
function childShells(): number[] {
  const out: number[] = [];
  for (const task of readdirSync("/proc/self/task")) {
    const text = readFileSync(`/proc/self/task/${task}/children`, "utf8").trim();
    if (text) out.push(...text.split(/\s+/).map(Number));
  }
  return out;
}
