import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import {
  CancelReplySchema,
  CancelRequestSchema,
  CommandAckSchema,
  PhaseCommandSchema,
  RunEventSchema,
  STREAMS,
  subjects,
  type StepResult,
} from "@stackbus/protocol";
import { decode, newCommandSigner } from "@stackbus/bus";
import { startGitServer, waitFor, type GitServer } from "@stackbus/testkit";
import { Lab, REPO_ROOT } from "./harness.js";

/** The template dispatch script of DevStack's plugins page, as the demo ships it (unchanged). */
const TEMPLATE = readFileSync(join(REPO_ROOT, "examples/demo/devstack/extras.d/50-template.sh"), "utf8");

/** Appends `<host> <hook> <argc> <args>` to `file`; a hook is `10-first.sh` or `zeta/devstack/plugin.sh`. */
const trace = (file: string) =>
  `src=\${BASH_SOURCE[0]}; case $src in */extras.d/*) src=\${src##*/} ;; *) src=\${src#*/stack/} ;; esac\n` +
  `echo "$STACKBUS_HOST $src $# $*" >> ${JSON.stringify(file)}\n`;

/** lib/template: the functions the template calls, each recording which script called it. */
const libTemplate = (file: string) => `
install_package() { echo "$STACKBUS_HOST install_package $* from \${BASH_SOURCE[1]##*/}" >> ${JSON.stringify(file)}; }
install_template() { echo "$STACKBUS_HOST install_template from \${BASH_SOURCE[1]##*/}" >> ${JSON.stringify(file)}; }
configure_template() { echo "$STACKBUS_HOST configure_template from \${BASH_SOURCE[1]##*/}" >> ${JSON.stringify(file)}; }
`;

describe("agent - hooks run on each host exactly as stack.sh would, in one shell per run", () => {
  let git: GitServer;
  let lab: Lab;
  let runId = "";
  let stackLines: string[] = [];
  const lines = () => readFileSync(lab.shared, "utf8").trim().split("\n");

  before(async () => {
    git = await startGitServer();
    lab = new Lab({ hosts: [] });
    const shared = join(lab.dir.path, "shared.log");
    await git.commit("zeta", {
      "devstack/settings": `ZETA_VAR=from-settings\n`,
      "devstack/plugin.sh":
        trace(shared) +
        `if [[ "$1 $2" == "stack install" ]]; then zeta_fn() { echo "$STACKBUS_HOST zeta_fn called at $1 $2 with ZETA_VAR=$ZETA_VAR" >> ${JSON.stringify(shared)}; }; fi\n` +
        `if [[ "$1 $2" == "stack post-config" ]]; then zeta_fn "$@"; fi\n` +
        `if [[ "$1 $2" == "stack extra" ]]; then echo "$STACKBUS_HOST zeta extra sees ZETA_VAR=$ZETA_VAR" >> ${JSON.stringify(shared)}; fi\n`,
    });
    await git.commit("alpha", { "devstack/plugin.sh": trace(shared) });
    await git.commit("tmpl", { "devstack/plugin.sh": TEMPLATE });
    const localConf = (host: string) =>
      [
        "[[local|localrc]]",
        "ENABLED_SERVICES=template",
        `TRACE=${lab.dir.path}/merge-${host}`,
        `enable_plugin zeta ${git.repoUrl("zeta")}`,
        `enable_plugin alpha ${git.repoUrl("alpha")} master`,
        `enable_plugin tmpl ${git.repoUrl("tmpl")}`,
        "",
        "[[post-config|$TRACE/post.conf]]",
        "[DEFAULT]",
        "merged = post-config",
        "",
        "[[extra|$TRACE/extra.conf]]",
        "[DEFAULT]",
        "merged = extra",
        "",
      ].join("\n");
    const probe = (host: string) =>
      `if [[ "$1 $2" == "stack post-config" || "$1 $2" == "stack extra" ]]; then echo "$STACKBUS_HOST probe $2 post=$([[ -f ${lab.dir.path}/merge-${host}/post.conf ]] && echo yes || echo no) extra=$([[ -f ${lab.dir.path}/merge-${host}/extra.conf ]] && echo yes || echo no)" >> ${JSON.stringify(shared)}; fi\n`;
    const facts =
      `if [[ "$1 $2" == "stack install" && $STACKBUS_HOST == controller ]]; then CTRL_TOKEN="tok en-$RANDOM"; echo "controller exported $CTRL_TOKEN" >> ${JSON.stringify(shared)}; stackbus_export CTRL_TOKEN; fi\n` +
      `if [[ "$1 $2" == "stack post-config" && $STACKBUS_HOST != controller ]]; then echo "$STACKBUS_HOST read $(stackbus_fact controller CTRL_TOKEN)" >> ${JSON.stringify(shared)}; fi\n`;
    const files = (host: string) => ({
      "extras.d/10-first.sh": trace(shared),
      "extras.d/50-template.sh": TEMPLATE,
      "extras.d/90-last.sh": trace(shared) + probe(host) + facts,
      "lib/template": libTemplate(shared),
    });
    lab.hosts.push({ name: "controller", wave: 1, files: files("controller"), localConf: localConf("controller") }, { name: "compute1", wave: 2, files: files("compute1"), localConf: localConf("compute1") });
    await lab.start();
    const res = await lab.cli(["stack", "--wait", "--json"]);
    assert.equal(res.code, 0, res.stdout + res.stderr);
    runId = (JSON.parse(res.stdout.split("\n")[0] as string) as { runId: string }).runId;
    stackLines = lines();
  });
  after(async () => {
    await lab?.stop();
    await git?.stop();
  });

  it("keeps a plugin's settings variable to its stack extra, and a function from install to post-config", () => {
    const all = lines();
    assert.ok(all.includes("controller zeta extra sees ZETA_VAR=from-settings"), all.join("\n"));
    assert.ok(all.includes("controller zeta_fn called at stack post-config with ZETA_VAR=from-settings"));
    assert.ok(all.includes("compute1 zeta_fn called at stack post-config with ZETA_VAR=from-settings"));
  });

  it("passes plugin.sh two arguments in stack phases and one in unstack", async () => {
    const all = lines();
    assert.ok(all.includes("controller zeta/devstack/plugin.sh 2 stack install"));
    const res = await lab.cli(["unstack", "--wait"]);
    assert.equal(res.code, 0, res.stdout + res.stderr);
    assert.ok(lines().includes("controller zeta/devstack/plugin.sh 1 unstack"));
    assert.ok(lines().includes("compute1 10-first.sh 1 unstack"));
  });

  it("runs extras.d in two-digit order, then the plugins in registration order, in every phase", () => {
    const phases = ["override_defaults", "source", "stack pre-install", "stack install", "stack post-config", "stack extra", "stack test-config"];
    for (const phase of phases) {
      const order = stackLines
        .filter((l) => l.startsWith("controller ") && / \d (.+)$/.exec(l)?.[1] === phase && /(10-first|90-last|plugin)\.sh /.test(l))
        .map((l) => l.split(" ")[1] as string);
      // extras.d in order, then zeta before alpha: registration order, not alphabetical. plugin.sh is
      // not sourced at override_defaults and source (those map to override-defaults and settings).
      const expected = phase.startsWith("stack")
        ? ["10-first.sh", "90-last.sh", "zeta/devstack/plugin.sh", "alpha/devstack/plugin.sh"]
        : ["10-first.sh", "90-last.sh"];
      assert.deepEqual(order, expected, phase);
    }
  });

  it("merges post-config after that phase's hooks and extra before its hooks", () => {
    assert.ok(lines().includes("controller probe post-config post=no extra=no"), "post-config hooks ran before the post-config merge");
    assert.ok(lines().includes("controller probe extra post=yes extra=yes"), "the extra merge ran before the extra hooks");
    assert.equal(readFileSync(join(lab.dir.path, "merge-controller/post.conf"), "utf8"), "\n[DEFAULT]\nmerged = post-config\n");
  });

  it("lets a compute read the value the controller exported in an earlier phase", () => {
    const exported = lines().find((l) => l.startsWith("controller exported "))?.slice("controller exported ".length);
    assert.ok(exported);
    assert.ok(lines().includes(`compute1 read ${exported}`));
  });

  it("runs the seeds' template unchanged as extras.d/50-template.sh and as a plugin's plugin.sh, each branch in its phase", () => {
    for (const host of ["controller", "compute1"]) {
      for (const from of ["50-template.sh", "plugin.sh"]) {
        assert.ok(lines().includes(`${host} install_package cowsay from ${from}`), `${host} pre-install branch from ${from}`);
        assert.ok(lines().includes(`${host} install_template from ${from}`), `${host} install branch from ${from}`);
        assert.ok(lines().includes(`${host} configure_template from ${from}`), `${host} post-config branch from ${from}`);
      }
    }
  });

  it("does not run a redelivered step again, and answers with the stored result, also after the agent restarts", async () => {
    const before = lines().filter((l) => l === "controller 10-first.sh 2 stack install").length;
    assert.equal(before, 1);
    const command = { lab: lab.name, runId, kind: "stack" as const, attempt: 1, step: "install" as const, configRevision: 1, timeoutMs: 60_000, facts: {} };
    const ack = await lab.bus.request(subjects.hostCommand(lab.name, "controller"), PhaseCommandSchema, command, CommandAckSchema);
    assert.equal(ack.state, "done");
    assert.equal(ack.result?.status, "ok");
    await lab.procs.get("agent-controller")?.kill();
    lab.startAgent("controller");
    await lab.waitForAgents(["controller"]);
    const again = await lab.bus.request(subjects.hostCommand(lab.name, "controller"), PhaseCommandSchema, command, CommandAckSchema);
    assert.equal(again.state, "done");
    assert.equal(lines().filter((l) => l === "controller 10-first.sh 2 stack install").length, 1, "the hook ran once");
  });

  it("puts every line a hook printed on the log subject with host, step and hook, and in the host's run log", async () => {
    const res = await lab.cli(["logs", runId, "--host", "controller", "--step", "pre-install", "--hook", "extras.d/50-template.sh"]);
    assert.equal(res.code, 0, res.stderr);
    assert.equal(res.stdout, "Configuring system services Template\n");
    const logFile = join(lab.hostDir("controller"), "state", "runs", runId, "attempt-1.log");
    assert.match(readFileSync(logFile, "utf8"), /pre-install extras\.d\/50-template\.sh \| Configuring system services Template/);
  });
});

describe("agent - failures as stack.sh, timeouts, and the second agent", () => {
  let lab: Lab;
  before(async () => {
    lab = await Lab.start({ hosts: [{ name: "solo" }] });
  });
  after(async () => lab?.stop());

  it("an errexit failure names the host, step, hook and exit status, carries the output tail, and stops the step", async () => {
    lab.writeHostFiles({
      name: "solo",
      files: {
        "extras.d/10-ok.sh": "true\n",
        "extras.d/20-bad.sh": 'if [[ "$1 $2" == "stack install" ]]; then echo "about to fail"; f() { echo "in f"; false; echo "never"; }; f; echo "never either"; fi\n',
        "extras.d/30-after.sh": `if [[ "$1 $2" == "stack install" ]]; then echo ran >> ${JSON.stringify(lab.shared)}; fi\n`,
      },
    });
    const res = await lab.cli(["stack", "--wait", "--json"]);
    assert.equal(res.code, 1);
    const results = res.stdout.trim().split("\n").map((l) => JSON.parse(l) as { kind: string } & Partial<StepResult>);
    const install = results.find((r) => r.kind === "result" && r.step === "install");
    assert.equal(install?.status, "failed");
    const f = install?.failures?.[0];
    assert.deepEqual([f?.host, f?.step, f?.hook, f?.exitCode], ["solo", "install", "extras.d/20-bad.sh", 1]);
    assert.deepEqual(f?.outputTail, ["about to fail", "in f"]);
    assert.equal(readFileSync(lab.shared, "utf8"), "", "30-after.sh did not run after the failure");
    assert.equal(results.filter((r) => r.kind === "result" && r.step === "post-config").length, 0, "the run stopped");
  });

  it("unstack goes on after a failing hook and reports it as a warning, as DevStack's unstack.sh does; unstackErrors: fail makes it a failure", async () => {
    writeFileSync(lab.shared, "");
    lab.writeHostFiles({
      name: "solo",
      files: {
        "extras.d/20-bad.sh": 'if [[ "$1" == "unstack" ]]; then echo "cannot stop"; exit_code=3; (exit 3); fi\n',
        "extras.d/30-after.sh": `if [[ "$1" == "unstack" ]]; then echo after-ran >> ${JSON.stringify(lab.shared)}; fi\n`,
      },
    });
    const res = await lab.cli(["unstack", "--wait"]);
    assert.equal(res.code, 0, res.stdout);
    assert.equal(readFileSync(lab.shared, "utf8"), "after-ran\n");
    assert.match(res.stdout, /unstack solo ok[^\n]*\n\s+warning extras\.d\/20-bad\.sh failed with exit status 3 \(DevStack's unstack\.sh and clean\.sh go on past it\)/);
    assert.match(res.stdout, /succeeded/);

    lab.options.manifestExtra = "defaults:\n  unstackErrors: fail";
    await lab.apply(lab.manifest());
    try {
      writeFileSync(lab.shared, "");
      const strict = await lab.cli(["unstack", "--wait"]);
      assert.equal(strict.code, 1, strict.stdout);
      assert.equal(readFileSync(lab.shared, "utf8"), "after-ran\n", "every hook still runs");
      assert.match(strict.stdout, /solo \/ unstack \/ extras\.d\/20-bad\.sh \/ exit 3/);
    } finally {
      lab.options.manifestExtra = undefined;
      await lab.apply(lab.manifest());
    }
  });

  it("a phase timeout kills the hook and its sleep child: no process is left", async () => {
    const marker = "1000.4217";
    lab.writeHostFiles({
      name: "solo",
      files: {
        "extras.d/20-bad.sh": "true\n",
        "extras.d/30-after.sh": "true\n",
        "extras.d/40-slow.sh": `if [[ "$1 $2" == "stack pre-install" ]]; then sleep ${marker} & sleep ${marker}; fi\n`,
      },
    });
    const res = await lab.cli(["stack", "--wait", "--phase-timeout", "1500ms"]);
    assert.equal(res.code, 1);
    assert.match(res.stdout, /pre-install solo TIMEOUT/);
    await waitFor("no sleep left", () => !psHas(`sleep ${marker}`), 10_000);
  });

  it("refuses a second live agent for the same host with a clear error", async () => {
    const second = lab.startAgent("solo");
    const code = await second.exited();
    assert.notEqual(code, 0);
    assert.match(second.output(), /an agent for host "solo" in lab "testlab" is already running \(pid \d+/);
  });

  it("stores every run event so a late watcher can replay them", async () => {
    const stored = await lab.bus.readStream(STREAMS.runs, `sb.${lab.name}.run.*.event`);
    const types = new Set(stored.map((m) => decode(m.subject, RunEventSchema, m.data).type));
    for (const t of ["run.created", "run.attempt", "step.started", "step.finished", "run.finished"]) assert.ok(types.has(t as never), t);
    assert.ok(existsSync(lab.hostDir("solo")));
  });
});

function psHas(text: string): boolean {
  const out = execFileSync("ps", ["-eo", "args"]).toString();
  return out.split("\n").some((l) => l.trim() === text);
}

describe("agent - accepts only phase commands and cancels the coordinator signed, when it knows its key", () => {
  let lab: Lab;
  const { signer } = newCommandSigner();
  before(async () => {
    lab = await Lab.start({ hosts: [{ name: "solo" }], services: ["config"], agents: false });
    lab.startAgent("solo", ["--coordinator-key", signer.publicKey]);
    await lab.waitForAgents(["solo"]);
  });
  after(async () => lab?.stop());

  const command = { lab: "testlab", runId: "rsig", kind: "stack" as const, attempt: 1, step: "prepare" as const, configRevision: 1, timeoutMs: 60_000, facts: {} };
  const send = (message: object, host = "solo") => lab.bus.request(subjects.hostCommand("testlab", host), PhaseCommandSchema, message as typeof command, CommandAckSchema, { timeoutMs: 5_000 });

  it("refuses an unsigned command, one signed by another key, one signed for another subject, and one changed after signing", async () => {
    const other = newCommandSigner().signer;
    const refused = (why: RegExp) => (err: unknown) => (err as { code?: string }).code === "PERMISSION_DENIED" && why.test((err as Error).message);
    await assert.rejects(send(command), refused(/refused the prepare command of run rsig: it is not signed by the coordinator/));
    await assert.rejects(send(other.sign(subjects.hostCommand("testlab", "solo"), command)), refused(/its signature is not the coordinator's/));
    await assert.rejects(send(signer.sign(subjects.hostCommand("testlab", "other"), command)), refused(/its signature is not the coordinator's/));
    await assert.rejects(send({ ...signer.sign(subjects.hostCommand("testlab", "solo"), command), step: "clean", kind: "clean" }), refused(/signature is not the coordinator's/));
    const cancel = { runId: "rsig", reason: "forged" };
    await assert.rejects(lab.bus.request(subjects.hostCancel("testlab", "solo"), CancelRequestSchema, cancel, CancelReplySchema, { timeoutMs: 5_000 }), refused(/refused a cancel of run rsig: it is not signed/));
    assert.equal(existsSync(join(lab.hostDir("solo"), "state", "runs", "rsig")), false, "nothing of the run was recorded");
  });

  it("runs the command the coordinator signed for this host", async () => {
    const signed = signer.sign(subjects.hostCommand("testlab", "solo"), command);
    // A step that ends within the agent's ackAfterMs is answered by its stored result, not a reply.
    const first = await send(signed).catch((err: unknown) => ((err as { code?: string }).code === "TIMEOUT" ? null : Promise.reject(err)));
    if (first) assert.equal(first.state, "started");
    const again = await send(signed);
    assert.ok(again.state === "running" || again.state === "done", `the agent took the step in hand (${again.state})`);
  });
});
