/**
 * deploy/README.md, followed on 127.0.0.1 as root: the README's own shell blocks (marked
 * `<!-- deploy-test: NAME -->`) run with its paths moved under a temp root and its user names
 * scoped to this test; the services and an agent start as the systemd units would start them
 * (their User=, EnvironmentFile=, Environment=, StateDirectory=, CacheDirectory=, ExecStart=),
 * through the permissions `stackbus auth gen` writes; the operator stacks the lab.
 */
import assert from "node:assert/strict";
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, cpSync, existsSync, mkdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { freePort, natsServerBin, startGitServer, tempDir, track, trackGroup, untrack, waitFor } from "@stackbus/testkit";
import { CLI, procOf, REPO_ROOT, type Proc } from "./harness.js";

const README = readFileSync(join(REPO_ROOT, "deploy/README.md"), "utf8");
const UNITS = join(REPO_ROOT, "deploy/systemd");
const SERVICES = ["config", "fetcher", "coordinator"] as const;

/** The README's shell block after `<!-- deploy-test: NAME -->`. */
function readmeBlock(name: string): string {
  const m = new RegExp(`<!-- deploy-test: ${name} -->\\n\`\`\`sh\\n([\\s\\S]*?)\`\`\``).exec(README);
  assert.ok(m, `deploy/README.md has a block marked deploy-test: ${name}`);
  return m[1] as string;
}

function why(): string | undefined {
  if (process.getuid?.() !== 0) return "following deploy/README.md needs root (it creates system users and installs files for them); run the suite as root";
  for (const tool of ["useradd", "userdel", "setpriv", "install"]) {
    if (spawnSync("sh", ["-c", `command -v ${tool}`]).status !== 0) return `${tool} is not installed`;
  }
  if (spawnSync("id", ["nats"]).status !== 0) return "there is no nats user (Debian's nats-server package creates it: apt-get install -y nats-server)";
  return undefined;
}

interface Deployment {
  root: string;
  /** README text -> this test's: paths under the temp root, user names scoped. */
  localise(text: string): string;
  user(role: "config" | "fetcher" | "coordinator" | "stack"): string;
  natsPid?: number | undefined;
}

function deployment(root: string, id: string, ports: { client: number; http: number }): Deployment {
  const paths: Array<[RegExp, string]> = [
    [/nats:\/\/controller:4222/g, `nats://127.0.0.1:${ports.client}`],
    [/0\.0\.0\.0:4222/g, `127.0.0.1:${ports.client}`],
    [/127\.0\.0\.1:8222/g, `127.0.0.1:${ports.http}`],
    [/\/etc\/nats-server\.conf/g, `${root}/etc/nats-server.conf`],
    [/\/etc\/stackbus/g, `${root}/etc/stackbus`],
    [/\/var\/lib\/stackbus/g, `${root}/var/lib/stackbus`],
    [/\/var\/cache\/stackbus/g, `${root}/var/cache/stackbus`],
    [/\/var\/lib\/nats/g, `${root}/var/lib/nats`],
    [/\/opt\/stack(?![a-z])/g, `${root}/opt/stack`],
  ];
  const user = (role: string) => `stackbus-t${id}-${role}`;
  return {
    root,
    user,
    localise(text) {
      let out = text;
      for (const [from, to] of paths) out = out.replace(from, to);
      out = out.replace(/\bstackbus-(\$r|config|fetcher|coordinator)\b(?!\.service)/g, (_, r: string) => user(r));
      // DevStack's user `stack`: as an owner, a unit's User=/Group=, and the user useradd makes.
      out = out.replace(/(?<=(?:-o|-g) )stack\b/g, user("stack")).replace(/^(User|Group)=stack$/gm, `$1=${user("stack")}`);
      out = out.replace(/^(\s*sudo useradd .* )stack$/gm, `$1${user("stack")}`);
      return out;
    },
  };
}

/** Runs a README block in bash, `sudo` being this root shell and `stackbus` the checkout's CLI. */
async function runBlock(d: Deployment, block: string, cwd: string, cli: string, timeoutMs = 120_000): Promise<string> {
  // systemctl: recorded for the test to do what systemd would; a reload signals nats-server.
  const prelude = [
    "set -euo pipefail",
    'sudo() { "$@"; }',
    `stackbus() { ${JSON.stringify(process.execPath)} ${JSON.stringify(cli)} "$@"; }`,
    'systemctl() { echo "$*" >> "$SYSTEMCTL_LOG"; if [[ "$*" == "reload nats-server" ]]; then kill -HUP "$NATS_PID"; fi; }',
    "",
  ].join("\n");
  const script = prelude + d.localise(block);
  const child = spawn("bash", ["-c", script], { cwd, stdio: ["ignore", "pipe", "pipe"], env: { PATH: process.env["PATH"] ?? "/usr/bin:/bin", HOME: cwd, NO_COLOR: "1", SYSTEMCTL_LOG: join(d.root, "systemctl.log"), NATS_PID: String(d.natsPid ?? "") } });
  trackGroup(child);
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
  child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
  const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  const code = await new Promise<number | null>((resolve) => child.once("exit", (c) => resolve(c)));
  clearTimeout(timer);
  untrack(child);
  if (code !== 0) throw new Error(`the README's block exited ${String(code)}:\n${d.localise(block)}\n${stdout}${stderr}`);
  return stdout;
}

/** auth gen's defaults spelled out, so that they move under the test's root with the rest. */
function withDefaults(block: string): string {
  const out = block.replace(/--http 127\.0\.0\.1:8222/, "$& --store-dir /var/lib/nats --install-dir /etc/stackbus");
  assert.notEqual(out, block, "the block runs auth gen with --http");
  return out;
}

/** `KEY=VALUE` lines of a systemd EnvironmentFile (comments and blank lines skipped). */
function envFile(path: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of readFileSync(path, "utf8").split("\n")) {
    const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line.trim());
    if (m) env[m[1] as string] = m[2] as string;
  }
  return env;
}

/**
 * Starts a unit as systemd would (no systemd here): its environment files read as root, its
 * Environment= lines, its state and cache directories made for its user, then its ExecStart
 * as User=/Group=.
 */
function startUnit(d: Deployment, unit: string, instance: string, cli: string): Proc {
  const text = d.localise(readFileSync(join(UNITS, unit), "utf8")).replaceAll("%i", instance);
  const values = (key: string) => [...text.matchAll(new RegExp(`^${key}=(.*)$`, "gm"))].map((m) => m[1] as string);
  const [user] = values("User");
  const [group] = values("Group");
  assert.ok(user && group, `${unit} names User= and Group=`);
  const env: Record<string, string> = { PATH: "/usr/local/bin:/usr/bin:/bin" };
  for (const line of values("Environment")) {
    const [key, ...rest] = line.split("=");
    env[key as string] = rest.join("=");
  }
  // systemd: settings from the environment files override Environment= lines.
  for (const file of values("EnvironmentFile")) {
    const optional = file.startsWith("-");
    const path = optional ? file.slice(1) : file;
    if (!existsSync(path)) {
      assert.ok(optional, `${unit}: ${path} is required and missing`);
      continue;
    }
    Object.assign(env, envFile(path));
  }
  for (const [key, base] of [["StateDirectory", "var/lib"], ["CacheDirectory", "var/cache"]] as const) {
    for (const dir of values(key)) {
      const path = join(d.root, base, dir);
      mkdirSync(path, { recursive: true });
      execFileSync("chown", [`${user}:${group}`, path]);
    }
  }
  const [exec] = values("ExecStart");
  const argv = (exec ?? "").split(" ");
  assert.equal(argv[0], "/usr/local/bin/stackbus", `${unit} runs /usr/local/bin/stackbus`);
  const child = spawn("setpriv", ["--reuid", user, "--regid", group, "--init-groups", "--", process.execPath, cli, ...argv.slice(1)], {
    stdio: ["ignore", "pipe", "pipe"],
    env,
    cwd: "/",
  });
  return procOf(unit, child);
}

/** True when `user` may read `path`. */
function canRead(user: string, path: string): boolean {
  return spawnSync("setpriv", ["--reuid", user, "--regid", user, "--init-groups", "--", "cat", path], { stdio: "ignore" }).status === 0;
}

test("deploy - deploy/README.md followed on 127.0.0.1: users first, each seed its service's only, the units' users, the operator's env file, a stack through the generated permissions", { skip: why() ?? false, timeout: 240_000 }, async () => {
  const id = randomBytes(3).toString("hex");
  const tmp = tempDir("sb-deploy-");
  chmodSync(tmp.path, 0o755);
  const port = await freePort();
  const http = await freePort();
  const url = `nats://127.0.0.1:${port}`;
  const d = deployment(tmp.path, id, { client: port, http });
  const created: string[] = [];
  const procs: Proc[] = [];
  await using git = await startGitServer();
  try {
    // The tree the units run: the checkout, when every user may read it (as /opt/stackbus), else a copy.
    let cli = CLI;
    const probe = (who: string) => spawnSync("setpriv", ["--reuid", who, "--regid", who, "--init-groups", "--", process.execPath, cli, "--version"], { stdio: "ignore" }).status === 0;
    const work = join(tmp.path, "work");
    mkdirSync(work);
    symlinkSync(join(REPO_ROOT, "deploy"), join(work, "deploy"));
    mkdirSync(join(tmp.path, "opt"));

    // 2. Users, before any file is installed for them.
    const users = [...SERVICES.map((r) => d.user(r)), d.user("stack")];
    for (const u of users) assert.notEqual(spawnSync("id", [u]).status, 0, `${u} exists already`);
    try {
      await runBlock(d, readmeBlock("users"), work, cli);
    } finally {
      for (const u of users) if (spawnSync("id", [u]).status === 0) created.push(u);
    }
    assert.deepEqual(created, users);
    if (!probe(d.user("stack"))) {
      const opt = join(tmp.path, "opt", "stackbus");
      for (const part of ["package.json", "node_modules", "packages", "services"]) cpSync(join(REPO_ROOT, part), join(opt, part), { recursive: true, verbatimSymlinks: true });
      cli = join(opt, "packages/cli/bin/stackbus.js");
      assert.ok(probe(d.user("stack")), `the copy in ${opt} is readable by the service users`);
    }

    // The lab: one compute host whose hook says who runs it, and a plugin the fetcher serves.
    const top = join(tmp.path, "opt/stack/devstack");
    mkdirSync(join(top, "extras.d"), { recursive: true });
    writeFileSync(join(top, "extras.d/10-who.sh"), 'if [[ "$1 $2" == "stack install" ]]; then echo "installing as $(id -un) on $STACKBUS_HOST"; fi\n');
    execFileSync("chown", ["-R", `${d.user("stack")}:${d.user("stack")}`, join(tmp.path, "opt/stack")]);
    await git.commit("hello-plugin", { "devstack/plugin.sh": 'if [[ "$1 $2" == "stack post-config" ]]; then echo "hello-plugin configured"; fi\n' });
    writeFileSync(join(work, "compute1.conf"), `[[local|localrc]]\nenable_plugin hello-plugin ${git.repoUrl("hello-plugin")}\n`);
    writeFileSync(join(work, "lab.yaml"), "lab: lab1\nhosts:\n  - name: compute1\n    localConf: compute1.conf\n");

    // 3. Identities, with this machine's addresses (and the defaults spelled out, so that they move under the test's root).
    await runBlock(d, withDefaults(readmeBlock("gen")), work, cli);

    // 1. (the settings every unit reads), edited as the README says; then 3. install.
    await runBlock(d, readmeBlock("settings"), work, cli);
    const settings = join(tmp.path, "etc/stackbus/stackbus.env");
    const edited = readFileSync(settings, "utf8").replace(/^NATS_URL=.*$/m, `NATS_URL=${url}`).replace(/^STACKBUS_LAB=.*$/m, "STACKBUS_LAB=lab1");
    writeFileSync(settings, `${edited}STACKBUS_TOP_DIR=${top}\nSTACKBUS_DEST=${join(tmp.path, "opt/stack")}\n`);
    await runBlock(d, readmeBlock("install"), work, cli);

    // Each service user reads its own seed and nothing else; the env files are root's.
    const etc = join(tmp.path, "etc/stackbus");
    const seeds: Array<[string, string]> = [
      ...SERVICES.map((r) => [d.user(r), join(etc, `${r}.nk`)] as [string, string]),
      [d.user("coordinator"), join(etc, "coordinator-sign.nk")],
      [d.user("stack"), join(etc, "agent-compute1.nk")],
    ];
    for (const who of users) {
      for (const [owner, seed] of seeds) assert.equal(canRead(who, seed), owner === who, `${who} ${owner === who ? "reads" : "may not read"} ${seed}`);
      for (const r of [...SERVICES, "agent-compute1"]) assert.equal(canRead(who, join(etc, `${r}.env`)), false, `${who} may not read ${r}.env`);
      assert.equal(canRead(who, join(tmp.path, "etc/nats-server.conf")), false, `${who} may not read the server config`);
      assert.equal(canRead(who, settings), true, `${who} reads stackbus.env`);
    }
    assert.equal(canRead("nats", join(tmp.path, "etc/nats-server.conf")), true, "nats reads its config");
    for (const [, seed] of seeds) assert.equal(statSync(seed).mode & 0o777, 0o400, seed);

    // 4. The controller: nats-server as nats, the three services as their units.
    const nats = spawn("setpriv", ["--reuid", "nats", "--regid", "nats", "--init-groups", "--", natsServerBin(), "-c", join(tmp.path, "etc/nats-server.conf")], { stdio: ["ignore", "pipe", "pipe"] });
    track(nats);
    d.natsPid = nats.pid;
    let natsOut = "";
    nats.stderr.on("data", (c: Buffer) => (natsOut += c.toString()));
    try {
      await waitFor("nats-server's /healthz", async () => {
        const res = await fetch(`http://127.0.0.1:${http}/healthz`).catch(() => undefined);
        return res?.ok ? true : undefined;
      }, 30_000, 100).catch((err: unknown) => {
        throw new Error(`${(err as Error).message}\n${natsOut}`);
      });
      for (const r of SERVICES) procs.push(startUnit(d, `stackbus-${r}.service`, "", cli));
      // 5. The compute host's agent (it waits for its lab).
      const agent = startUnit(d, "stackbus-agent@.service", "compute1", cli);
      procs.push(agent);

      // 6. As the operator: the lab applied first, so that the agent starts; then the README's block.
      const operator = (command: string, timeoutMs?: number) => runBlock(d, `set -a; . lab1-auth/env/operator.env; set +a\n${command}\n`, work, cli, timeoutMs);
      await waitFor("the config service", () => operator("stackbus lab apply lab.yaml", 20_000).catch(() => undefined), 60_000, 500);
      await waitFor("the agent of compute1", () => operator("stackbus agents", 20_000).catch(() => undefined), 60_000, 500).catch((err: unknown) => {
        throw new Error(`${(err as Error).message}\n${procs.map((p) => `${p.name}:\n${p.output()}`).join("\n")}`);
      });
      const out = await runBlock(d, readmeBlock("operator"), work, cli);
      assert.match(out, /lab lab1: unchanged, revision 1/);
      assert.match(out, /run (r\S+) succeeded/, out);
      const logs = await operator("stackbus logs --host compute1");
      assert.match(logs, new RegExp(`installing as ${d.user("stack")} on compute1`), "the hook ran as the agent's user");
      assert.match(logs, /hello-plugin configured/, "the plugin came through the fetcher");

      // A denied operation names the role.
      const asAgent = spawnSync("bash", ["-c", `set -a; . ${etc}/agent-compute1.env; set +a; ${process.execPath} ${cli} lab apply lab.yaml`], { cwd: work, encoding: "utf8", env: { PATH: process.env["PATH"] ?? "", NO_COLOR: "1" } });
      assert.notEqual(asAgent.status, 0);
      assert.match(asAgent.stderr, /permission denied: NATS user "agent-compute1" may not publish to "sb\.lab1\.config\.apply"/);

      // Adding a host: its identity only; compute1's agent and the services go on with theirs.
      const host2 = join(tmp.path, "hosts/compute2");
      for (const dir of ["devstack/extras.d", "stack", "state"]) mkdirSync(join(host2, dir), { recursive: true });
      writeFileSync(join(host2, "devstack/extras.d/10-who.sh"), readFileSync(join(top, "extras.d/10-who.sh")));
      execFileSync("chown", ["-R", `${d.user("stack")}:${d.user("stack")}`, host2]);
      writeFileSync(join(work, "compute2.conf"), readFileSync(join(work, "compute1.conf")));
      writeFileSync(join(work, "lab.yaml"), "lab: lab1\nhosts:\n  - name: compute1\n    localConf: compute1.conf\n  - name: compute2\n    localConf: compute2.conf\n");
      const block = readmeBlock("add-host");
      // Another box, in truth: its own TOP_DIR, DEST and state directory, in its env file.
      const local = `printf 'STACKBUS_TOP_DIR=%s\\nSTACKBUS_DEST=%s\\nSTACKBUS_STATE_DIR=%s\\n' ${join(host2, "devstack")} ${join(host2, "stack")} ${join(host2, "state")} >> /etc/stackbus/agent-compute2.env\n`;
      const added = await runBlock(d, withDefaults(block).replace(/^sudo systemctl enable --now stackbus-agent@compute2$/m, `${local}$&`), work, cli);
      assert.match(added, /kept 6 identities; new: agent-compute2/);
      assert.match(added, /lab lab1: revision 2 applied \(2 hosts\)/);
      const asked = readFileSync(join(tmp.path, "systemctl.log"), "utf8");
      assert.match(asked, /^reload nats-server$/m);
      assert.match(asked, /^enable --now stackbus-agent@compute2$/m);
      procs.push(startUnit(d, "stackbus-agent@.service", "compute2", cli));
      await waitFor("the agent of compute2", () => operator("stackbus agents", 20_000).catch(() => undefined), 60_000, 500).catch((err: unknown) => {
        throw new Error(`${(err as Error).message}\n${procs.map((p) => `${p.name}:\n${p.output()}`).join("\n")}`);
      });
      const both = await operator("stackbus stack --wait", 120_000);
      assert.match(both, /run (r\S+) succeeded/, both);
      const logs2 = await operator("stackbus logs --step install");
      for (const h of ["compute1", "compute2"]) assert.match(logs2, new RegExp(`installing as ${d.user("stack")} on ${h}`), h);
      for (const p of procs) assert.equal(p.child.exitCode, null, `${p.name} is still running:\n${p.output()}`);
    } finally {
      await Promise.all(procs.map((p) => p.kill()));
      nats.kill("SIGTERM");
      await new Promise((r) => (nats.exitCode === null ? nats.once("exit", r) : r(undefined)));
      untrack(nats);
    }
  } finally {
    for (const u of created) spawnSync("userdel", [u]);
    for (const u of created) spawnSync("groupdel", [u], { stdio: "ignore" });
    tmp.remove();
  }
});
