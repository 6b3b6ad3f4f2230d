/**
 * The hooks runner with --devstack-dir against the real DevStack (../shared/mirrors): a
 * plugin sees DevStack's variables and functions as stack.sh has them, and DevStack's die
 * names the plugin's own file and line. The reference is the real stack.sh and unstack.sh of
 * another host of the same lab (DevStack mode), with the same plugin and localrc.
 */
import assert from "node:assert/strict";
import { chmodSync, existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { devstackEnvironment, devstackHost, giveTo, offlineLocalrc, startGitServer, type GitServer } from "@stackbus/testkit";
import { Lab } from "./harness.js";
import { runAsUser, runIdOf, unavailable } from "./devstack-lab.js";

const skip = unavailable();
if (skip) console.log(`SKIPPED: --devstack-dir tests: ${skip}`);

/** What a plugin's settings reads of DevStack's (stackrc, lib/*, GetDistro). */
const VARIABLES = [
  "NOVA_CONF",
  "NOVA_CPU_CONF",
  "KEYSTONE_SERVICE_URI",
  "DISTRO",
  "SERVICE_PROJECT_NAME",
  "REGION_NAME",
  "RABBIT_USERID",
  "SERVICE_LISTEN_ADDRESS",
  "TARGET_BRANCH",
  "ETCD_PORT",
  "CINDER_CONF",
  "GLANCE_API_CONF",
  "STACK_USER",
];

/** The line of the probe's plugin.sh that calls die at unstack. */
const DIE_LINE = 3;

describe("hooks runner with --devstack-dir - the real DevStack's variables, functions and die, as stack.sh and unstack.sh have them", { skip }, () => {
  let git: GitServer;
  let lab: Lab;
  let probe = "";
  let checkout = "";
  before(async () => {
    const env = devstackEnvironment();
    git = await startGitServer();
    lab = new Lab({
      hosts: [
        { name: "real", devstack: {}, runner: "devstack" },
        { name: "hooks", runner: "hooks" },
      ],
      heartbeatMs: 500,
      agents: false,
      // The hooks agent runs as DevStack's user, as stack.sh must (it refuses root).
      agentPrefix: (host) => (host === "hooks" ? runAsUser(env) : []),
      manifestExtra: `defaults:\n  devstackUser: ${env.user}`,
    });
    probe = join(lab.dir.path, "probe");
    mkdirSync(probe, { mode: 0o777 });
    chmodSync(probe, 0o777);
    const values = VARIABLES.map((v) => `echo "${v}=\${${v}-<unset>}"`).join("\n");
    await git.commit("probe", {
      "devstack/settings": [
        `{`,
        values,
        `echo "LOGDIR is a directory: $([[ -d \${LOGDIR-} ]] && echo yes || echo no)"`,
        `} > ${probe}/settings-$STACKBUS_HOST`,
        `declare -f get_transport_url > ${probe}/get_transport_url-$STACKBUS_HOST`,
        "",
      ].join("\n"),
      // DIE_LINE is the die's line
      "devstack/plugin.sh": [`echo "probe $* on $STACKBUS_HOST" >> ${probe}/ran`, `if [[ $1 == unstack ]]; then`, `    die $LINENO "probe cannot stop"`, `fi`, ""].join("\n"),
    });
    await git.commit("later", { "devstack/plugin.sh": `echo "later $* on $STACKBUS_HOST" >> ${probe}/ran\n` });
    const plugins = `enable_plugin probe ${git.repoUrl("probe")}\nenable_plugin later ${git.repoUrl("later")}`;
    for (const h of lab.hosts) h.localConf = offlineLocalrc(lab.dest(h.name), plugins);
    await lab.start();
    // The hooks host: its own TOP_DIR (extras.d, local.conf) and, elsewhere, a DevStack checkout.
    checkout = join(lab.hostDir("hooks"), "devstack-checkout");
    devstackHost(env, { topDir: checkout, dest: lab.dest("hooks"), cacheDir: join(lab.dir.path, "mirrors") });
    giveTo(lab.hostDir("hooks"), env);
    lab.startAgent("real");
    lab.startAgent("hooks", ["--devstack-dir", checkout]);
    await lab.waitForAgents(["real", "hooks"]);
  });
  after(async () => {
    await lab?.stop();
    await git?.stop();
  });

  it("plan names DevStack's files in the steps that source them, for each run kind", async () => {
    const entries = async (kind: string) => {
      const res = await lab.cli(["plan", kind, "--hosts", "hooks", "--json"]);
      assert.equal(res.code, 0, res.stderr);
      const plan = JSON.parse(res.stdout.trim()) as { steps: Array<{ step: string; entries: Array<{ action: string; name: string }> }> };
      return (step: string) => plan.steps.find((s) => s.step === step)?.entries.filter((e) => e.action === "devstack" || e.name === "stackrc" || e.name === "openrc").map((e) => e.name);
    };
    const stack = await entries("stack");
    assert.deepEqual(stack("prepare"), ["lib/stack", "GetDistro", "stackrc", "lib/database", "lib/rpc_backend", "lib/host"]);
    assert.deepEqual(stack("source")?.slice(0, 2), ["lib/apache", "lib/tls"]);
    assert.equal(stack("source")?.at(-1), "lib/os-vif");
    const unstack = await entries("unstack");
    assert.deepEqual(unstack("prepare"), ["lib/database", "openrc", "GetDistro"]);
    assert.ok(!unstack("source")?.includes("lib/rpc_backend"));
  });

  it("a plugin's settings reads NOVA_CONF, KEYSTONE_SERVICE_URI, DISTRO, ... as the real stack.sh has them, and declare -f get_transport_url finds DevStack's function", async () => {
    const res = await lab.cli(["stack", "--wait"], 600_000);
    assert.equal(res.code, 0, res.stdout + res.stderr);
    const real = readFileSync(join(probe, "settings-real"), "utf8");
    const hooks = readFileSync(join(probe, "settings-hooks"), "utf8");
    assert.equal(hooks, real, "the hooks runner's session has what stack.sh's shell has at run_phase source");
    const value = (name: string) => new RegExp(`^${name}=(.*)$`, "m").exec(hooks)?.[1];
    assert.equal(value("NOVA_CONF"), "/etc/nova/nova.conf");
    assert.equal(value("NOVA_CPU_CONF"), "/etc/nova/nova-cpu.conf");
    assert.equal(value("KEYSTONE_SERVICE_URI"), "http://127.0.0.1/identity");
    assert.equal(value("DISTRO"), readFileSync("/etc/os-release", "utf8").match(/^VERSION_CODENAME=(.*)$/m)?.[1]);
    assert.equal(value("STACK_USER"), devstackEnvironment().user);
    assert.match(hooks, /^LOGDIR is a directory: yes$/m);
    // what stack.sh saved of its own environment
    const stackenv = readFileSync(join(lab.topDir("real"), ".stackenv"), "utf8");
    assert.match(stackenv, new RegExp(`^KEYSTONE_SERVICE_URI=${value("KEYSTONE_SERVICE_URI")}$`, "m"));

    const fn = readFileSync(join(probe, "get_transport_url-hooks"), "utf8");
    assert.match(fn, /^get_transport_url \(\)/);
    assert.match(fn, /rabbit:\/\//);
    assert.equal(fn, readFileSync(join(probe, "get_transport_url-real"), "utf8"), "DevStack's own lib/rpc_backend function");
    assert.ok(!existsSync(join(checkout, ".localrc.auto")) && !existsSync(join(checkout, "local.conf")), "the DevStack checkout is neither edited nor written to");
  });

  it("die in a plugin's unstack names the plugin's plugin.sh and line, as DevStack's own die does, appends to LOGDIR/error.log, and ends the later plugins' unstack", async () => {
    const hooks = await lab.cli(["unstack", "--hosts", "hooks", "--wait"], 300_000);
    assert.equal(hooks.code, 0, `a die in unstack is a warning on the host: ${hooks.stdout}${hooks.stderr}`);
    assert.match(hooks.stdout, /probe\/devstack\/plugin\.sh called die/);
    const hooksLog = await lab.cli(["logs", runIdOf(hooks.stdout + hooks.stderr), "--host", "hooks"]);
    const hooksError = `[ERROR] ${lab.dest("hooks")}/probe/devstack/plugin.sh:${DIE_LINE} probe cannot stop`;
    assert.ok(hooksLog.stdout.includes(hooksError), hooksLog.stdout);
    assert.ok(readFileSync(join(lab.dest("hooks"), "logs", "error.log"), "utf8").includes(hooksError), "DevStack's err appended to $LOGDIR/error.log");

    const real = await lab.cli(["unstack", "--hosts", "real", "--wait"], 300_000);
    const realLog = await lab.cli(["logs", runIdOf(real.stdout + real.stderr), "--host", "real"]);
    assert.ok(realLog.stdout.includes(`[ERROR] ${lab.dest("real")}/probe/devstack/plugin.sh:${DIE_LINE} probe cannot stop`), `the real unstack.sh says the same: ${realLog.stdout}`);

    const ran = readFileSync(join(probe, "ran"), "utf8").split("\n").filter((l) => l.includes(" unstack "));
    assert.deepEqual(ran, ["probe unstack on hooks", "probe unstack on real"], "die ends unstack.sh: the later plugin's unstack runs on neither host");
  });
});
