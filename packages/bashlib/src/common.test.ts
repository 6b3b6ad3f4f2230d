import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it, test } from "node:test";
import { tempDir } from "@stackbus/testkit";
import { bash, bashOut, q } from "./bash-harness.js";

test("die / warn / err - DevStack's message formats", async (t) => {
  using dir = tempDir("sb-die-");
  const hook = join(dir.path, "plugin.sh");
  writeFileSync(
    hook,
    [
      "function configure_thing {",
      '    die $LINENO "cannot configure $1"',
      "}",
      'warn $LINENO "look out"',
      "configure_thing widget",
      "echo not-reached",
      "",
    ].join("\n"),
  );

  await t.test("die - prints the call trace and '[ERROR] <file>:<line> <msg>' on stderr and ends the hook with status 1", async () => {
    const run = await bash(`source ${q(hook)}`);
    assert.equal(run.status, 1);
    assert.equal(run.stdout, `[WARNING] ${hook}:4 look out\n`);
    const lines = run.stderr.trimEnd().split("\n");
    assert.equal(lines[0], "[Call Trace]");
    assert.ok(lines.includes(`${hook}:2:die`), run.stderr);
    assert.ok(lines.includes(`${hook}:5:configure_thing`), run.stderr);
    assert.equal(lines.at(-1), `[ERROR] ${hook}:2 cannot configure widget`);
  });

  await t.test("die - exits with the status of the previous command when it failed", async () => {
    const run = await bash('(exit 7) || die $LINENO "after seven"');
    assert.equal(run.status, 7);
    assert.match(run.stderr, /\[ERROR\] .*:1 after seven$/m);
  });

  await t.test("die - without a line number argument the message is everything and the line is the caller's", async () => {
    const run = await bash('true\ndie "no line given"');
    assert.equal(run.status, 1);
    assert.match(run.stderr, /^\[ERROR\] main:2 no line given$/m);
  });

  await t.test("die - also appends the error line to $LOGDIR/error.log", async () => {
    const run = await bash(`LOGDIR=${q(dir.path)}\ndie 42 "logged failure"`);
    assert.equal(run.status, 1);
    assert.equal(readFileSync(join(dir.path, "error.log"), "utf8"), "[ERROR] main:42 logged failure\n");
  });

  await t.test("die - calls __stackbus_die_exit with the status; when the agent's redefinition returns, die returns that status", async () => {
    const run = await bash(
      'function __stackbus_die_exit { echo "hook got $1"; }\nfalse || die $LINENO "soft"\necho "die returned $?"\necho still-running',
    );
    assert.equal(run.status, 0);
    assert.equal(run.stdout, "hook got 1\ndie returned 1\nstill-running\n");
  });

  await t.test("die - a redefined __stackbus_die_exit survives sourcing the library again", async () => {
    const run = await bash(`function __stackbus_die_exit { echo "kept $1"; }\nsource "$__STACKBUS_BASHLIB_DIR/functions.sh"\n(exit 3) || die 1 x`);
    assert.equal(run.stdout, "kept 3\n");
  });

  await t.test("warn - prints '[WARNING] <file>:<line> <msg>' on stdout and leaves $? as it was", async () => {
    const run = await bash('warn $LINENO "first"; echo "rc=$?"\nfalse || warn $LINENO "second"; echo "rc=$?"');
    assert.equal(run.status, 0);
    assert.equal(run.stdout, "[WARNING] main:1 first\nrc=0\n[WARNING] main:2 second\nrc=1\n");
    assert.equal(run.stderr, "");
  });

  await t.test("err - prints '[ERROR] <file>:<line> <msg>' on stderr and does not end the hook", async () => {
    const run = await bash('err $LINENO "recoverable"\necho continued');
    assert.equal(run.status, 0);
    assert.equal(run.stdout, "continued\n");
    assert.equal(run.stderr, "[ERROR] main:1 recoverable\n");
  });

  await t.test("deprecated - prints 'WARNING: <text>' on stderr and collects the text in DEPRECATED_TEXT", async () => {
    const run = await bash('deprecated "old knob"\ndeprecated "older knob"\nprintf "%s" "$DEPRECATED_TEXT"');
    assert.equal(run.stderr, "WARNING: old knob\nWARNING: older knob\n");
    assert.equal(run.stdout, "\\nold knob\\nolder knob");
  });

  await t.test("echo_summary - prints the summary line on stdout, interpreting escapes", async () => {
    assert.equal(await bashOut('echo_summary "Installing\\tthing"'), "Installing\tthing");
  });
});

describe("die_if_not_set - DevStack's test_functions.sh cases", () => {
  // DevStack's test writes X=`echo Y && true`, X=`true`, X=`echo Y && false` and X=`false`
  // inside double quotes, so its outer shell expands the backticks: the shell under test
  // only ever sees X=Y or X= after a successful `source functions`.
  const cases: Array<[string, string, boolean]> = [
    ["X=Y", "X from `echo Y && true`", false],
    ["X=", "X from `true`", true],
    ["X=Y", "X from `echo Y && false`", false],
    ["X=", "X from `false`", true],
  ];
  for (const [assignment, label, dies] of cases) {
    it(`die_if_not_set - ${label} ${dies ? "dies" : "does not die"}`, async () => {
      const run = await bash(`${assignment}\ndie_if_not_set $LINENO X 'message'\necho survived`);
      assert.equal(run.status, dies ? 1 : 0, run.stderr);
      assert.equal(run.stdout, dies ? "" : "survived\n");
      if (dies) assert.match(run.stderr, /\[ERROR\] main:2 message/);
    });
  }

  it("die_if_not_set - a failed previous command dies with its status even when the variable is set", async () => {
    const run = await bash("X=Y\n(exit 4) || die_if_not_set $LINENO X 'failed before'");
    assert.equal(run.status, 4);
  });
});

describe("trueorfalse - DevStack's test_truefalse.sh", () => {
  it("trueorfalse - dies with status 1 when the variable name is missing ($FOO expanded to nothing)", async () => {
    const run = await bash('VAR=$(trueorfalse False $FOO)\necho "rc=$?"', { prelude: "" });
    assert.equal(run.stdout, "rc=1\n");
    assert.match(run.stderr, /variable to normalize required/);
  });

  it("trueorfalse - an unset variable gives the default", async () => {
    assert.equal(await bashOut("trueorfalse False MISSING_VARIABLE; trueorfalse True MISSING_VARIABLE"), "False\nTrue");
  });

  for (const def of ["True", "False"]) {
    it(`trueorfalse - with default ${def}: 1 True true TRUE Yes yes YES give True`, async () => {
      const out = await bashOut(`for v in 1 True true TRUE Yes yes YES; do X=$v; trueorfalse ${def} X; done`);
      assert.deepEqual(out.split("\n"), Array(7).fill("True"));
    });
    it(`trueorfalse - with default ${def}: 0 False false FALSE No no NO give False`, async () => {
      const out = await bashOut(`for v in 0 False false FALSE No no NO; do X=$v; trueorfalse ${def} X; done`);
      assert.deepEqual(out.split("\n"), Array(7).fill("False"));
    });
  }

  it("trueorfalse - any other value gives the default", async () => {
    assert.equal(await bashOut("for v in maybe 2 on ''; do X=$v; trueorfalse Dflt X; done"), "Dflt\nDflt\nDflt\nDflt");
  });
});

describe("small helpers - DevStack's test_functions.sh and friends", () => {
  it("isset - true for a set variable, false after unset", async () => {
    assert.equal(await bashOut("x=42; isset x && echo yes || echo no; unset x; isset x && echo yes || echo no"), "yes\nno");
  });

  it("isset - true for a variable set to the empty string; is_set is not", async () => {
    assert.equal(await bashOut("x=; isset x && echo yes || echo no; is_set x && echo yes || echo no"), "yes\nno");
  });

  it("export_proxy_variables - exports the proxy variables that are set", async () => {
    const out = await bashOut(
      "http_proxy=http_proxy_test; https_proxy=https_proxy_test; no_proxy=no_proxy_test\nexport_proxy_variables\nenv | grep -E '^(http(s)?|no)_proxy=' | sort",
    );
    assert.equal(out, "http_proxy=http_proxy_test\nhttps_proxy=https_proxy_test\nno_proxy=no_proxy_test");
  });

  it("export_proxy_variables - exports nothing when they are unset", async () => {
    const out = await bashOut("unset http_proxy https_proxy no_proxy\nexport_proxy_variables\nenv | grep -cE '^(http(s)?|no)_proxy=' || true");
    assert.equal(out, "0");
  });

  it("generate_hex_string - N bytes give 2N hex characters, different each time", async () => {
    const out = (await bashOut("generate_hex_string 16; generate_hex_string 32; generate_hex_string 16")).split("\n");
    assert.match(out[0] ?? "", /^[0-9a-f]{32}$/);
    assert.match(out[1] ?? "", /^[0-9a-f]{64}$/);
    assert.notEqual(out[0], out[2]);
  });

  it("read_password - keeps a password that is set, generates 20 hex characters for one that is not, never reads stdin", async () => {
    const out = await bashOut('A=given\nread_password A "prompt"\nread_password B "prompt"\necho "$A $B"', { stdin: "typed\n" });
    assert.match(out, /^given [0-9a-f]{20}$/);
  });

  it("time_start / time_stop - accumulate milliseconds per name; a double start dies", async () => {
    const out = await bashOut("time_start t; sleep 0.05; time_stop t; time_start t; time_stop t; echo ${_TIME_TOTAL[t]}");
    assert.ok(Number(out) >= 50 && Number(out) < 5000, out);
    const run = await bash("time_start t; time_start t");
    assert.equal(run.status, 1);
    assert.match(run.stderr, /Trying to start the clock on t, but it's already been started/);
    const stop = await bash("time_stop never");
    assert.equal(stop.status, 1);
    assert.match(stop.stderr, /Trying to stop the clock on never, but it was never started/);
  });

  it("get_extra_file - a file:// URL is used in place", async () => {
    assert.equal(await bashOut("get_extra_file file:///srv/images/cirros.img"), "/srv/images/cirros.img");
  });

  it("safe_chown / safe_chmod - change ownership and mode as root", async () => {
    const dir = tempDir("sb-chown-");
    try {
      const file = join(dir.path, "f");
      writeFileSync(file, "");
      const out = await bashOut(`safe_chmod 0600 ${q(file)}; safe_chown "$(id -u):$(id -g)" ${q(file)}; stat -c '%a %u' ${q(file)}; id -u`);
      const [mode, owner] = (out.split("\n")[0] ?? "").split(" ");
      assert.equal(mode, "600");
      assert.equal(owner, out.split("\n")[1]);
    } finally {
      dir.remove();
    }
  });
});
