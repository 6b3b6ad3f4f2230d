import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { userInfo } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { silentLogger } from "@stackbus/bus";
import { bareMirror, mirrorsDir, tempDir, waitFor } from "@stackbus/testkit";
import type { HostConfig, RunKind } from "@stackbus/protocol";
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
  // A stand-in stackrc: it sources the localrc of its own directory, as DevStack's does.
  writeFileSync(join(devstack, "stackrc"), 'RC_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)\nif [[ -f $RC_DIR/.localrc.auto ]]; then source "$RC_DIR/.localrc.auto"; fi\n');
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
    const { session } = await openSession({ dirs, config, kind: "stack", runId: "r1", runDir, logger: silentLogger(), onOutput: () => undefined, spare });
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
    const { session } = await openSession({ dirs, config: hostConfig(localrc), kind: "stack", runId, runDir: join(dir.path, runId), logger: silentLogger(), onOutput: () => undefined, writeLocalConf: false });
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

describe("session - with --devstack-dir, what the run kind's DevStack script has before its first phase", { skip: existsSync(join(mirrorsDir(), "devstack.bundle")) ? false : `no DevStack bundle in ${mirrorsDir()}` }, () => {
  const dir = tempDir("sb-ds-prepare-");
  const checkout = join(dir.path, "devstack");
  const dirs: HostDirs = { topDir: join(dir.path, "top"), dest: join(dir.path, "agent-dest"), stateDir: join(dir.path, "state"), devstackDir: checkout };
  const dest = join(dir.path, "stack");
  const opened: BashSession[] = [];
  after(() => {
    for (const s of opened) s.kill("SIGKILL");
    dir.remove();
  });
  execFileSync("git", ["clone", "-q", "--shared", bareMirror("devstack.bundle", join(dir.path, "mirrors")), checkout]);
  const localrc = [`DEST=${dest}`, "ENABLED_SERVICES=key", "HOST_IP=127.0.0.1", "FROM_LOCALRC=yes", 'SEEN_TOP_DIR=$TOP_DIR', 'SEEN_RC_DIR=$RC_DIR', ""].join("\n");
  const open = async (kind: RunKind, runId: string) => {
    const lines: string[] = [];
    const result = await openSession({ dirs, config: hostConfig(localrc), kind, runId, runDir: join(dirs.stateDir, runId), logger: silentLogger(), onOutput: (_s, _h, text) => void lines.push(text) });
    opened.push(result.session);
    return { ...result, lines };
  };
  const report = (s: BashSession, names: string[]) => s.query(names.map((n) => `__sb_report ${n} "\${${n}-<unset>}"`).join("\n"));

  it("stack: stackrc sources the run's localrc from a directory of links (RC_DIR), GetDistro, lib/database, lib/rpc_backend and lib/host; TOP_DIR is the agent's again after them", async () => {
    writeFileSync(join(checkout, "localrc"), "FROM_CHECKOUT_LOCALRC=yes\n"); // an old-style localrc of the checkout is not the run's
    try {
      const { session, failed, warnings, lines } = await open("stack", "r-stack");
      assert.equal(failed, undefined, lines.join("\n"));
      const v = await report(session, ["FROM_LOCALRC", "FROM_CHECKOUT_LOCALRC", "SEEN_TOP_DIR", "SEEN_RC_DIR", "RC_DIR", "TOP_DIR", "DEST", "DATA_DIR", "LOGDIR", "DISTRO", "REGION_NAME", "TARGET_BRANCH", "RABBIT_USERID", "STACK_USER"]);
      const rcDir = join(dirs.stateDir, "r-stack", "devstack-rc");
      assert.deepEqual(v, {
        FROM_LOCALRC: "yes",
        FROM_CHECKOUT_LOCALRC: "<unset>",
        SEEN_TOP_DIR: checkout,
        SEEN_RC_DIR: rcDir,
        RC_DIR: rcDir,
        TOP_DIR: dirs.topDir,
        DEST: dest,
        // stackrc sets DATA_DIR from its own DEST, before the localrc
        DATA_DIR: "/opt/stack/data",
        LOGDIR: join(dest, "logs"),
        DISTRO: execFileSync("lsb_release", ["-c", "-s"], { encoding: "utf8" }).trim(),
        REGION_NAME: "RegionOne",
        TARGET_BRANCH: "master",
        RABBIT_USERID: "stackrabbit",
        STACK_USER: stackUserDefault(),
      });
      assert.ok(statSync(join(dest, "logs")).isDirectory(), "LOGDIR exists");
      assert.equal(readlinkSync(join(rcDir, ".localrc.auto")), join(dirs.topDir, ".localrc.auto"));
      assert.match((await session.query('__sb_report f "$(declare -f get_transport_url | head -1)"; __sb_report t "$(type -t tune_host)"; __sb_report r "$(type -t read_password)"'))["f"] ?? "", /^get_transport_url \(\)/);
      assert.deepEqual(await session.query('read_password DB_PW; __sb_report n "${#DB_PW}"; SET_PW=mine; read_password SET_PW; __sb_report s "$SET_PW"'), { n: "20", s: "mine" });
      assert.ok(warnings.some((w) => w.includes(`DEST is ${dest}`) && w.includes(`--dest ${dirs.dest} is not used`)), warnings.join("\n"));
      assert.equal(execFileSync("git", ["-C", checkout, "status", "--porcelain", "--ignored"], { encoding: "utf8" }), "!! localrc\n", "the checkout is not edited (its own localrc aside)");
    } finally {
      rmSync(join(checkout, "localrc"));
    }
  });

  it("unstack: openrc (stackrc, the localrc, lib/tls) after lib/database, then GetDistro; lib/rpc_backend is not sourced, as in unstack.sh", async () => {
    const { session, failed, lines } = await open("unstack", "r-unstack");
    assert.equal(failed, undefined, lines.join("\n"));
    const v = await report(session, ["FROM_LOCALRC", "DATABASE_BACKENDS", "OS_REGION_NAME", "DISTRO"]);
    assert.equal(v["FROM_LOCALRC"], "yes");
    assert.match(v["DATABASE_BACKENDS"] ?? "", /mysql/);
    assert.equal(v["OS_REGION_NAME"], "RegionOne", "openrc's exports");
    assert.notEqual(v["DISTRO"], "<unset>");
    assert.equal((await session.query('__sb_report t "$(type -t get_transport_url)"'))["t"], "");
  });

  it("a checkout without stackrc is refused, naming it", async () => {
    const bare = join(dir.path, "not-devstack");
    mkdirSync(bare, { recursive: true });
    writeFileSync(join(bare, "functions"), "true\n");
    await assert.rejects(
      openSession({ dirs: { ...dirs, devstackDir: bare }, config: hostConfig(""), kind: "stack", runId: "r-bare", runDir: join(dirs.stateDir, "r-bare"), logger: silentLogger(), onOutput: () => undefined }),
      new RegExp(`the DevStack checkout ${bare} \\(--devstack-dir\\) has no stackrc`),
    );
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
