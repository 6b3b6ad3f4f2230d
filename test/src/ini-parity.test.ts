import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { bashlibEntry } from "@stackbus/bashlib";
import { iniAddLiteral, iniDelete, iniGet, iniGetMultiline, iniHasOption, iniSections, iniSet } from "@stackbus/localconf";
import { INI_CASES, tempDir, type IniStep } from "@stackbus/testkit";

// INI editing exists twice: in TypeScript (packages/localconf, used by the local.conf merge)
// and in awk (packages/bashlib's ini functions, used by hooks). This holds both to the same
// cases: after every step the file (or the answer) must be the same, byte for byte.

/** What localconf makes of the steps: after each, the text (edits) or the answer (queries). */
function typescriptSide(text: string, steps: readonly IniStep[]): string[] {
  let ini = text;
  return steps.map((s) => {
    switch (s.op) {
      case "set":
        return (ini = iniSet(ini, s.section, s.option, s.value));
      case "addLiteral":
        return (ini = iniAddLiteral(ini, s.section, s.option, s.value));
      case "delete":
        return (ini = iniDelete(ini, s.section, s.option));
      case "get":
        return iniGet(ini, s.section, s.option);
      case "getMultiline":
        return iniGetMultiline(ini, s.section, s.option);
      case "has":
        return String(iniHasOption(ini, s.section, s.option));
      case "sections":
        return iniSections(ini);
    }
  });
}

const q = (value: string) => `'${value.replaceAll("'", `'\\''`)}'`;

/** The same steps as bash commands of the helper library on a file, each followed by what it shows. */
function bashScript(steps: readonly IniStep[]): string {
  const lines = steps.map((s) => {
    if (s.op === "sections") return `__out=$(iniget_sections "$F"); printf '%s\\0' "$__out"`;
    const where = `"$F" ${q(s.section)} ${q(s.option)}`;
    switch (s.op) {
      case "set":
        return `iniset ${where} ${q(s.value)}; cat "$F" 2>/dev/null; printf '\\0'`;
      case "addLiteral":
        return `iniadd_literal ${where} ${q(s.value)}; cat "$F" 2>/dev/null; printf '\\0'`;
      case "delete":
        return `inidelete ${where}; cat "$F" 2>/dev/null; printf '\\0'`;
      case "get":
        return `__out=$(iniget ${where}); printf '%s\\0' "$__out"`;
      case "getMultiline":
        return `__out=$(iniget_multiline ${where}); printf '%s\\0' "$__out"`;
      case "has":
        return `if ini_has_option ${where}; then printf 'true\\0'; else printf 'false\\0'; fi`;
    }
  });
  return [`source ${q(bashlibEntry())}`, ...lines].join("\n");
}

/** What the helper library makes of the steps, on a real file (absent when the text is empty). */
function bashSide(dir: string, name: string, text: string, steps: readonly IniStep[]): string[] {
  const file = join(dir, `${name.replace(/[^A-Za-z0-9]+/g, "-")}.ini`);
  if (text !== "") writeFileSync(file, text);
  const run = spawnSync("bash", ["--noprofile", "--norc", "-c", bashScript(steps)], {
    env: { PATH: process.env["PATH"] ?? "/usr/bin:/bin", LANG: "C.UTF-8", F: file },
    encoding: "utf8",
  });
  assert.equal(run.status, 0, run.stderr);
  const out = run.stdout.split("\0");
  assert.equal(out.pop(), "", "every step ends its record");
  return out;
}

test("ini parity - localconf's TypeScript and the helper library's awk edit ini files alike", async (t) => {
  using dir = tempDir("sb-ini-parity-");

  for (const c of INI_CASES) {
    await t.test(`${c.name}: the same file and the same answers after every step`, () => {
      const expected = typescriptSide(c.text, c.steps);
      const actual = bashSide(dir.path, c.name, c.text, c.steps);
      assert.equal(actual.length, c.steps.length);
      c.steps.forEach((step, i) => assert.equal(actual[i], expected[i], `step ${i + 1}: ${JSON.stringify(step)}`));
    });
  }
});
