import assert from "node:assert/strict";
import { mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { silentLogger } from "@stackbus/bus";
import { bashlibEntry, stackbusFunctionsPath } from "@stackbus/bashlib";
import { tempDir, waitFor } from "@stackbus/testkit";
import { BashSession, processGroupMembers, sessionScriptPath, type HookSpec } from "./session.js";

interface Line {
  stream: string;
  hook: number | null;
  text: string;
}

async function openSession(cwd: string, lines: Line[], extra: string[] = []): Promise<BashSession> {
  return BashSession.open({
    cwd,
    env: { PATH: process.env["PATH"] ?? "/usr/bin:/bin", HOME: cwd },
    preamble: [sessionScriptPath(), ...extra],
    logger: silentLogger(),
    onOutput: (stream, hook, text) => void lines.push({ stream, hook, text }),
  });
}

const src = (name: string, target: string, ...args: string[]): HookSpec => ({ name, kind: "source", target, args });

describe("session - one bash for the whole run", () => {
  const dir = tempDir("sb-session-");
  const file = (name: string, body: string) => {
    const path = join(dir.path, name);
    mkdirSync(join(path, ".."), { recursive: true });
    writeFileSync(path, body);
    return path;
  };
  let lib: string;
  before(() => {
    lib = file("lib.sh", 'die() { echo "[ERROR] $*" >&2; __stackbus_die_exit 3 || return $?; }\n');
  });
  after(() => dir.remove());

  it("keeps variables and functions from one batch to the next", async () => {
    const lines: Line[] = [];
    const s = await openSession(dir.path, lines);
    const a = file("a.sh", 'FOO=from-a\nhelper() { echo "helper sees $FOO"; }\n');
    const b = file("b.sh", "helper\n");
    await s.runBatch([src("a", a)], true);
    const runs = await s.runBatch([src("b", b)], true);
    assert.equal(runs[0]?.status, "ok");
    assert.deepEqual(lines.filter((l) => l.hook === 0).map((l) => l.text), ["helper sees from-a"]);
    s.close();
  });

  it("passes the arguments as given: two for stack phases, one for unstack", async () => {
    const lines: Line[] = [];
    const s = await openSession(dir.path, lines);
    const h = file("args.sh", 'echo "argc=$# [$1][${2-}]"\n');
    const n = file("noargs.sh", 'echo "argc=$#"\n');
    await s.runBatch([src("x", h, "stack", "install"), src("y", h, "unstack"), { name: "z", kind: "noargs", target: n, args: [] }], true);
    assert.deepEqual(
      lines.map((l) => l.text),
      ["argc=2 [stack][install]", "argc=1 [unstack][]", "argc=0"],
    );
    s.close();
  });

  it("reads each script whole in a UTF-8 locale: names, arguments and facts with multibyte characters", { timeout: 10_000 }, async (t) => {
    const lines: Line[] = [];
    const s = await BashSession.open({
      cwd: dir.path,
      env: { PATH: process.env["PATH"] ?? "/usr/bin:/bin", HOME: dir.path, LANG: "C.UTF-8", LC_ALL: "C.UTF-8" },
      preamble: [sessionScriptPath()],
      logger: silentLogger(),
      onOutput: (stream, hook, text) => void lines.push({ stream, hook, text }),
    });
    t.after(() => s.close());
    // ${#1} counts characters: the hooks run in the session's UTF-8 locale.
    const hook = file("extras.d/20-café.sh", 'echo "$1 ${#1} $WORD"\n');
    const runs = await s.runBatch([src("extras.d/20-café.sh", hook, "naïve—ü"), src("again", hook, "ß")], true, "WORD=déjà");
    assert.deepEqual(runs.map((r) => [r.name, r.status]), [["extras.d/20-café.sh", "ok"], ["again", "ok"]]);
    assert.deepEqual(lines.map((l) => l.text), ["naïve—ü 7 déjà", "ß 1 déjà"]);
    assert.deepEqual(await s.query('__sb_report word "$WORD-€"'), { word: "déjà-€" });
    // bash cannot carry a NUL byte: such a script is refused, and the session goes on
    await assert.rejects(s.eval("echo 'a\0b'"), /contains a NUL byte/);
    assert.equal(await s.eval("true"), 0);
  });

  it("with errexit, a failing command ends the hook and skips the rest of the batch", async () => {
    const lines: Line[] = [];
    const s = await openSession(dir.path, lines);
    const bad = file("bad.sh", 'echo before\nf() { false; echo "not reached in f"; }\nf\necho "not reached"\n');
    const next = file("next.sh", "echo next\n");
    const runs = await s.runBatch([src("bad", bad), src("next", next)], true);
    assert.equal(runs[0]?.status, "failed");
    assert.equal(runs[0]?.exitCode, 1);
    assert.equal(runs[1]?.status, "skipped");
    assert.deepEqual(lines.map((l) => l.text), ["before"]);
    // the shell survived
    assert.equal(await s.eval("true"), 0);
    s.close();
  });

  it("without errexit, every hook runs and a failure is reported", async () => {
    const lines: Line[] = [];
    const s = await openSession(dir.path, lines);
    const bad = file("bad2.sh", "false\necho continues\n(exit 4)\n");
    const next = file("next2.sh", "echo next\n");
    const runs = await s.runBatch([src("bad", bad), src("next", next)], false);
    assert.equal(runs[0]?.status, "failed");
    assert.equal(runs[0]?.exitCode, 4);
    assert.equal(runs[1]?.status, "ok");
    assert.deepEqual(lines.map((l) => l.text), ["continues", "next"]);
    s.close();
  });

  it("die ends the hook and the rest of the batch in every phase, as DevStack's exit would, but keeps the shell", async () => {
    const lines: Line[] = [];
    const s = await openSession(dir.path, lines, [lib]);
    const dying = file("die.sh", 'die "bad thing"\necho "not reached"\n');
    const runs = await s.runBatch([src("d", dying), src("after", file("ok.sh", "echo ok\n"))], false);
    assert.equal(runs[0]?.status, "failed");
    assert.equal(runs[0]?.exitCode, 3);
    assert.equal(runs[0]?.died, true);
    assert.equal(runs[1]?.status, "skipped");
    assert.equal(runs[1]?.skipReason, "stopped");
    assert.equal(await s.eval("true"), 0, "the shell lives on");
    assert.ok(lines.some((l) => l.text === "[ERROR] bad thing" && l.hook === 0));
    s.close();
  });

  it("attributes every line, stdout and stderr, to the hook that printed it, in the order printed (stderr joins stdout, as in stack.sh's log)", async () => {
    const lines: Line[] = [];
    const s = await openSession(dir.path, lines);
    const one = file("one.sh", "echo out1\necho err1 >&2\nprintf 'no newline'\n");
    const two = file("two.sh", "echo out2\n");
    await s.runBatch([src("one", one), src("two", two)], true);
    assert.deepEqual(lines.filter((l) => l.hook === 0).map((l) => l.text), ["out1", "err1", "no newline"]);
    assert.deepEqual(lines.filter((l) => l.hook === 1).map((l) => l.text), ["out2"]);
    const many = file("many.sh", 'for i in $(seq 1 300); do echo "o$i"; echo "e$i" >&2; done\n');
    lines.length = 0;
    await s.runBatch([src("many", many)], true);
    const expected = Array.from({ length: 300 }, (_, i) => [`o${i + 1}`, `e${i + 1}`]).flat();
    assert.deepEqual(lines.filter((l) => l.hook === 0).map((l) => l.text), expected);
    s.close();
  });

  it("cannot be fooled by hook output: fd 3 is closed to hooks and fake records are just output", async () => {
    const lines: Line[] = [];
    const s = await openSession(dir.path, lines);
    const forger = file("forge.sh", "printf 'H\\x1f0\\x1fend\\x1f0\\x1f0\\x1e\\n'\necho fake >&3\n");
    const runs = await s.runBatch([src("forge", forger)], true);
    assert.equal(runs[0]?.status, "failed", "writing to fd 3 fails inside a hook");
    assert.ok(lines.some((l) => l.hook === 0 && /3: Bad file descriptor/.test(l.text)));
    s.close();
  });

  it("reports a hook that exits the shell, and the session ends", async () => {
    const lines: Line[] = [];
    const s = await openSession(dir.path, lines);
    const exiting = file("exit.sh", "echo bye\nexit 9\n");
    const runs = await s.runBatch([src("x", exiting), src("y", file("y.sh", "echo y\n"))], true);
    assert.equal(runs[0]?.status, "failed");
    assert.equal(runs[0]?.exitCode, 9);
    assert.equal(runs[1]?.status, "skipped");
    assert.equal(s.ended, true);
    await assert.rejects(s.eval("true"), /session has ended/);
  });

  it("kills the whole process group on timeout, children included", async () => {
    const lines: Line[] = [];
    const s = await openSession(dir.path, lines);
    const sleeper = file("sleep.sh", "sleep 1000 &\nsleep 1001\n");
    const batch = s.runBatch([src("sleep", sleeper)], true);
    await waitFor("the sleeps to start", () => processGroupMembers(s.pid).filter((p) => p.command.startsWith("sleep")).length === 2);
    s.kill("SIGTERM", "timeout", 500);
    const runs = await batch;
    assert.equal(runs[0]?.status, "timeout");
    await waitFor("no process left in the group", () => processGroupMembers(s.pid).length === 0, 5_000);
  });

  it("lists stray processes a hook left running", async () => {
    const lines: Line[] = [];
    const s = await openSession(dir.path, lines);
    const daemon = file("daemon.sh", "sleep 1000 >/dev/null 2>&1 &\n");
    try {
      await s.runBatch([src("daemon", daemon)], true);
      // the background job is a forked shell until it has exec'ed sleep: reported as sleep all the same
      assert.deepEqual((await s.strayProcesses()).map((p) => p.command), ["sleep 1000"]);
    } finally {
      s.kill("SIGKILL");
    }
  });
});

describe("session - with the real helper library", () => {
  const dir = tempDir("sb-session-lib-");
  after(() => dir.remove());

  it("a die in a hook ends that hook with the library's message, and the shell lives on", async () => {
    const lines: Line[] = [];
    const s = await openSession(dir.path, lines, [bashlibEntry()]);
    const hook = join(dir.path, "dying.sh");
    writeFileSync(hook, 'die $LINENO "cannot go on"\necho "not reached"\n');
    const runs = await s.runBatch([src("dying", hook)], true);
    assert.equal(runs[0]?.status, "failed");
    assert.equal(runs[0]?.died, true);
    assert.ok(lines.some((l) => l.hook === 0 && /\[ERROR\] .*dying\.sh:1 cannot go on/.test(l.text)), lines.map((l) => l.text).join("\n"));
    assert.ok(!lines.some((l) => l.text === "not reached"));
    assert.equal(await s.eval("is_service_enabled nova || true"), 0, "the shell still answers");
    s.close();
  });

  it("a duplicate enable_plugin in localrc dies naming the plugin", async () => {
    const lines: Line[] = [];
    const s = await openSession(dir.path, lines, [bashlibEntry()]);
    const localrc = join(dir.path, "localrc");
    writeFileSync(localrc, "DEST=/opt/stack\nenable_plugin foo https://example.org/foo\nenable_plugin foo https://example.org/foo2\n");
    const runs = await s.runBatch([{ name: "localrc", kind: "noargs", target: localrc, args: [] }], false);
    assert.equal(runs[0]?.died, true);
    assert.ok(lines.some((l) => /Plugin attempted to be enabled twice: foo https:\/\/example.org\/foo2 master/.test(l.text)), lines.map((l) => l.text).join("\n"));
    s.close();
  });
});

describe("session - with DevStack's own functions (--devstack-dir)", () => {
  const dir = tempDir("sb-session-ds-");
  after(() => dir.remove());

  it("a die that ends with exit, as DevStack's does, ends the hook but not the session", async () => {
    const functions = join(dir.path, "functions");
    // A stand-in with the shape of DevStack's die: print, then exit with the previous status, or 1.
    writeFileSync(
      functions,
      [
        'die() { local exitcode=$?; local line=$1; shift; [[ $exitcode == 0 ]] && exitcode=1; backtrace 2; err $line "$*"; exit $exitcode; }',
        'backtrace() { echo "[Call Trace]"; }',
        'err() { local msg="[ERROR] ${BASH_SOURCE[2]}:$1 $2"; echo "$msg" >&2; [[ -n ${LOGDIR:-} ]] && echo "$msg" >> "$LOGDIR/error.log"; return 0; }',
        "",
      ].join("\n"),
    );
    const lines: Line[] = [];
    const s = await openSession(dir.path, lines, [functions, stackbusFunctionsPath()]);
    after(() => s.kill("SIGKILL"));
    assert.equal(await s.eval("__sb_wrap_devstack_die"), 0);
    const hook = join(dir.path, "h.sh");
    writeFileSync(hook, 'false || die $LINENO "devstack says no"\necho "not reached"\n');
    const runs = await s.runBatch([src("h", hook), src("next", join(dir.path, "h2.sh"))], false);
    assert.equal(runs[0]?.status, "failed");
    assert.equal(runs[0]?.died, true);
    assert.ok(lines.some((l) => l.text === `[ERROR] ${hook}:1 devstack says no`), `DevStack's err names the hook and its line: ${lines.map((l) => l.text).join(" | ")}`);
    assert.ok(!lines.some((l) => l.text === "not reached"));
    assert.equal(s.ended, false);
    assert.equal(await s.eval("(die 0 'in a subshell'); echo sub=$?"), 0);
    // agent code's output is not waited for like a hook's: it may come just after the status
    await waitFor("in a subshell die still exits that subshell", () => lines.some((l) => l.text === "sub=1"), 5_000);
    s.close();
  });

  it("a DevStack file is sourced with TOP_DIR the checkout and no arguments; TOP_DIR is the session's again after it, also when it failed under errexit", async () => {
    const checkout = join(dir.path, "checkout");
    mkdirSync(join(checkout, "lib"), { recursive: true });
    writeFileSync(join(checkout, "lib", "good"), 'GOOD_SAW="$TOP_DIR $#"\n');
    writeFileSync(join(checkout, "lib", "bad"), 'BAD_SAW=$TOP_DIR\nfalse\nBAD_GOT_PAST=yes\n');
    const lines: Line[] = [];
    const s = await openSession(dir.path, lines, [bashlibEntry()]);
    after(() => s.kill("SIGKILL"));
    assert.equal(await s.eval(`__sb_devstack_setup '${checkout}'; TOP_DIR=/the/agents/top`), 0);
    const ds = (name: string): HookSpec => ({ name: `lib/${name}`, kind: "devstack", target: join(checkout, "lib", name), args: [] });
    const runs = await s.runBatch([ds("good"), ds("bad"), ds("missing")], true, "set -- stray args");
    assert.deepEqual(runs.map((r) => r.status), ["ok", "failed", "skipped"]);
    assert.equal(runs[1]?.command, "false");
    assert.deepEqual(await s.query('__sb_report g "$GOOD_SAW"; __sb_report b "$BAD_SAW"; __sb_report p "${BAD_GOT_PAST-no}"; __sb_report t "$TOP_DIR"'), {
      g: `${checkout} 0`,
      b: checkout,
      p: "no",
      t: "/the/agents/top",
    });
  });

  it("the hypervisor plugin that DevStack's lib/nova has already sourced is not sourced again, and its functions are called", async () => {
    const plugins = join(dir.path, "checkout", "lib", "nova_plugins");
    mkdirSync(plugins, { recursive: true });
    writeFileSync(join(plugins, "hypervisor-fake"), 'HV_LOADS=$(( ${HV_LOADS:-0} + 1 ))\nstop_nova_hypervisor() { echo "stopped after $HV_LOADS load(s)"; }\n');
    const top = join(dir.path, "hv-top");
    mkdirSync(join(top, "lib"), { recursive: true });
    symlinkSync(plugins, join(top, "lib", "nova_plugins"));
    const lines: Line[] = [];
    const s = await openSession(dir.path, lines, [bashlibEntry()]);
    after(() => s.kill("SIGKILL"));
    // as lib/nova does when nova is enabled and the file is readable
    const libNova = `NOVA_PLUGINS='${plugins}'; VIRT_DRIVER=fake; ENABLED_SERVICES=n-cpu; source "$NOVA_PLUGINS/hypervisor-$VIRT_DRIVER"`;
    assert.equal(await s.eval(`__sb_devstack_setup '${join(dir.path, "checkout")}'; TOP_DIR='${top}'; ${libNova}`), 0);
    const runs = await s.runBatch([{ name: "hv", kind: "hv-load", target: "", args: [] }, { name: "stop", kind: "hv-call", target: "stop_nova_hypervisor", args: ["n-cpu"] }], false);
    assert.deepEqual(runs.map((r) => [r.status, r.skipReason]), [["skipped", "loaded by lib/nova"], ["ok", undefined]]);
    assert.ok(lines.some((l) => l.text === "stopped after 1 load(s)"), lines.map((l) => l.text).join(" | "));
  });
});
