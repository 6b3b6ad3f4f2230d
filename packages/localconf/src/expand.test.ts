import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { describe, it, test } from "node:test";
import { ErrorCode, StackbusError } from "@stackbus/protocol";
import { tempDir } from "@stackbus/testkit";
import { bashExpander } from "./bash-expander.test-helper.js";
import { expansionScript, parseExpansionOutput, referencedVariables, type ExpandRequest } from "./expand.js";

test("expansion - local.conf text expanded in the host's shell as DevStack expands it", async (t) => {
  using scratch = tempDir("sb-expand-");
  const dir = scratch.path;
  writeFileSync(join(dir, "a.conf"), "");
  writeFileSync(join(dir, "local.conf"), "");

  const run = async (requests: ExpandRequest[], env: Record<string, string> = {}) => bashExpander({ env, cwd: dir })(requests);

  await t.test("a file spec expands like eval echo: variables, command substitution and globs", async () => {
    const results = await run(
      [
        { kind: "spec", text: "$W/nova.conf" },
        { kind: "spec", text: "${W}/$(echo sub)/x.conf" },
        { kind: "spec", text: "*.conf" },
      ],
      { W: "/etc/nova" },
    );
    assert.deepEqual(
      results.map((r) => r.value),
      ["/etc/nova/nova.conf", "/etc/nova/sub/x.conf", "a.conf local.conf"],
    );
  });

  await t.test("a value is read without -r, eval'd in double quotes and echoed unquoted (§3.5 rows)", async () => {
    const texts = ["lots   of   spaces", 'say "hi"', "$HOME_X/path", "a\\b\\\\c", "a&b|c/d", "*", "", "it's $(echo ok)", "-n x"];
    const results = await run(
      texts.map((text) => ({ kind: "value", text })),
      { HOME_X: "/home/x" },
    );
    assert.deepEqual(
      results.map((r) => r.value),
      ["lots of spaces", "say hi", "/home/x/path", "ab\\c", "a&b|c/d", "a.conf local.conf", "", "it's ok", "x"],
    );
    assert.ok(results.every((r) => r.error === undefined && r.unset.length === 0));
  });

  await t.test("an earlier value of a repeated key (iniadd_literal) keeps its spaces and globs", async () => {
    const [literal] = await run([{ kind: "literal", text: 'x   y * "q"' }]);
    assert.equal(literal?.value, "x   y * q");
  });

  await t.test("a section or key name expands as one unquoted word, and more than one word is an error", async () => {
    const results = await run(
      [
        { kind: "word", text: "DEFAULT" },
        { kind: "word", text: "$SECTION" },
        { kind: "word", text: "$TWO" },
      ],
      { SECTION: "keystone_authtoken", TWO: "a b" },
    );
    assert.equal(results[0]?.value, "DEFAULT");
    assert.equal(results[1]?.value, "keystone_authtoken");
    assert.match(results[2]?.error ?? "", /expands to 2 words/);
  });

  await t.test("lists the referenced variables that are unset, but not those with a default or set to empty", async () => {
    const [r] = await run([{ kind: "spec", text: "$A/${B}/${C:-c}/$EMPTY/${D%x}/'$QUOTED'" }], { EMPTY: "" });
    assert.deepEqual(r?.unset, ["A", "B", "D"]);
    assert.equal(r?.value, "//c///$QUOTED");
  });

  await t.test("a request that cannot be evaluated fails alone, with the shell's message; the others still expand", async () => {
    const results = await run([
      { kind: "value", text: 'unbalanced " quote' },
      { kind: "value", text: '"; exit 7; "' },
      { kind: "value", text: "fine" },
    ]);
    assert.match(results[0]?.error ?? "", /could not evaluate it \(status 2\).*unexpected EOF/);
    assert.match(results[1]?.error ?? "", /stopped before it finished \(exit status 7\)/);
    assert.deepEqual(results[2], { value: "fine", unset: [] });
  });

  await t.test("the script is safe to eval in a live session: status 0 under errexit and nounset, nothing leaks, quotes cannot break out", () => {
    const out = join(dir, "expand.out");
    const requests: ExpandRequest[] = [
      { kind: "value", text: "'; touch pwned-1; '" },
      { kind: "spec", text: "\\'\"; touch pwned-2; \"" },
      { kind: "literal", text: "back\\slash 'single' $'ansi'\ttab" },
      { kind: "word", text: "$UNSET_IN_SESSION" },
    ];
    const session = [
      "set -o errexit -o nounset -o pipefail",
      "KEEP=session",
      `exec 5>${JSON.stringify(out)}`,
      expansionScript(requests, 5),
      "exec 5>&-",
      'echo "after status=$? KEEP=$KEEP leaked=${__stackbus_x_v-none}"',
    ].join("\n");
    const result = spawnSync("bash", ["--noprofile", "--norc", "-c", session], { cwd: dir, encoding: "utf8" });
    assert.equal(result.status, 0, result.stderr);
    assert.equal(result.stdout.trim(), "after status=0 KEEP=session leaked=none");
    assert.equal(existsSync(join(dir, "pwned-1")), false);
    assert.equal(existsSync(join(dir, "pwned-2")), false);
    const results = parseExpansionOutput(readFileSync(out, "utf8"), requests.length);
    assert.equal(results[0]?.value, "'; touch pwned-1; '");
    assert.equal(results[1]?.value, "'; touch pwned-2; ");
    assert.equal(results[2]?.value, "backslash 'single' $'ansi'\ttab");
    assert.match(results[3]?.error ?? "", /expands to 0 words/);
    assert.deepEqual(results[3]?.unset, ["UNSET_IN_SESSION"]);
  });

  await t.test("refuses output that does not hold one result per request", () => {
    const bad = (output: string, count: number) =>
      assert.throws(() => parseExpansionOutput(output, count), (err: unknown) => err instanceof StackbusError && err.code === ErrorCode.MergeFailed);
    bad("", 1);
    bad("garbage\u0000", 1);
    bad("E\u00005\u00000\u0000\u0000", 1);
    assert.deepEqual(parseExpansionOutput("R\u00000\u0000v\u0000X \u0000\u0000E\u00000\u00000\u0000\u0000", 1), [{ value: "v", unset: ["X"] }]);
  });
});

describe("expansion - which variables a text refers to", () => {
  it("follows quoting and escaping as the shell does for each kind", () => {
    assert.deepEqual(referencedVariables("spec", "$A/\\$B/'$C'/\"$D\"/${E:=x}/${#F}"), ["A", "D", "F"]);
    assert.deepEqual(referencedVariables("value", "'$A' \\\\$B \\$C ${D}"), ["A", "C", "D"]);
    assert.deepEqual(referencedVariables("word", "$1$@$?"), []);
    assert.deepEqual(referencedVariables("spec", "${A:-x}/${B:=y}/$C/'$D'", { withDefaults: true }), ["A", "B", "C"]);
  });
});
