import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it, test } from "node:test";
import { ErrorCode } from "@stackbus/protocol";
import { tempDir } from "@stackbus/testkit";
import { bash, bashOut, q } from "./bash-harness.js";
import { FactsFileError, factsDeclaration, parseFactsFile } from "./facts.js";
import { stackbusFunctionsPath } from "./paths.js";

const TRICKY = "two words\nsecond line 'quoted' \"dq\" $HOME `x` \\ end\n";

test("stackbus_export / stackbus_fact", async (t) => {
  using dir = tempDir("sb-facts-");
  let factsFile: string;

  function fresh(): string {
    factsFile = join(dir.path, `facts-${Math.random().toString(36).slice(2)}`);
    return factsFile;
  }

  await t.test("stackbus_export - appends NAME NUL VALUE NUL per variable, values with spaces and newlines kept", async () => {
    const file = fresh();
    const run = await bash(`A='plain'\nB=${q(TRICKY)}\nEMPTY=\nstackbus_export A B\nstackbus_export EMPTY`, {
      env: { STACKBUS_FACTS_FILE: file },
    });
    assert.equal(run.status, 0, run.stderr);
    assert.equal(readFileSync(file, "utf8"), `A\0plain\0B\0${TRICKY}\0EMPTY\0\0`);
    assert.deepEqual(parseFactsFile(readFileSync(file)), { A: "plain", B: TRICKY, EMPTY: "" });
  });

  await t.test("stackbus_export - an unset variable is an error naming it, and nothing is written", async () => {
    const file = fresh();
    const run = await bash("A=1\nstackbus_export A NOT_THERE\necho rc=$?", { env: { STACKBUS_FACTS_FILE: file } });
    assert.equal(run.stdout, "rc=1\n");
    assert.match(run.stderr, /stackbus_export: NOT_THERE is not set/);
    assert.throws(() => readFileSync(file), /ENOENT/);
  });

  await t.test("stackbus_export - a name that is no shell identifier is refused", async () => {
    const run = await bash("stackbus_export 'A-B'\necho rc=$?", { env: { STACKBUS_FACTS_FILE: fresh() } });
    assert.equal(run.stdout, "rc=1\n");
    assert.match(run.stderr, /'A-B' is not a valid variable name/);
  });

  await t.test("stackbus_export - without STACKBUS_FACTS_FILE it fails with a message", async () => {
    const run = await bash("A=1\nstackbus_export A\necho rc=$?");
    assert.equal(run.stdout, "rc=1\n");
    assert.match(run.stderr, /STACKBUS_FACTS_FILE is not set/);
  });

  await t.test("stackbus_fact - prints what another host exported, from the array factsDeclaration builds", async () => {
    const declaration = factsDeclaration({ controller: { RABBIT_PASSWORD: TRICKY, "SERVICE_HOST": "10.0.0.11" }, "compute-1": { X: "" } });
    const out = await bash(`${declaration}\nstackbus_fact controller SERVICE_HOST\nV=$(stackbus_fact controller RABBIT_PASSWORD)\nprintf '%s|' "$V"\nstackbus_fact compute-1 X`);
    assert.equal(out.status, 0, out.stderr);
    assert.equal(out.stdout, `10.0.0.11\n${TRICKY.replace(/\n+$/, "")}|\n`);
  });

  await t.test("stackbus_fact - a missing host or variable is an error naming both", async () => {
    const declaration = factsDeclaration({ controller: { A: "1" } });
    const run = await bash(`${declaration}\nstackbus_fact controller B; echo rc=$?\nstackbus_fact compute A; echo rc=$?`);
    assert.equal(run.stdout, "rc=1\nrc=1\n");
    assert.match(run.stderr, /host controller has not exported B/);
    assert.match(run.stderr, /host compute has not exported A/);
  });

  await t.test("stackbus_fact - a default (third argument, may be empty) answers for a missing fact; a present one wins over it", async () => {
    const declaration = factsDeclaration({ controller: { A: "1" } });
    const run = await bash(`${declaration}\nstackbus_fact controller B fallback; echo rc=$?\nV=$(stackbus_fact compute A '')\necho "[$V] rc=$?"\nstackbus_fact controller A other`);
    assert.equal(run.stdout, "fallback\nrc=0\n[] rc=0\n1\n");
    assert.equal(run.stderr, "");
    const none = await bash("stackbus_fact controller A 'two words'");
    assert.equal(none.stdout, "two words\n");
  });

  await t.test("stackbus_fact - without a default a missing fact fails closed: under errexit the assignment ends the script, naming host and fact", async () => {
    const declaration = factsDeclaration({ controller: { A: "1" } });
    const run = await bash(`set -o errexit\n${declaration}\nSERVICE_HOST=$(stackbus_fact controller SERVICE_HOST)\necho "not reached: $SERVICE_HOST"`);
    assert.equal(run.status, 1);
    assert.equal(run.stdout, "");
    assert.match(run.stderr, /stackbus_fact: host controller has not exported SERVICE_HOST in this run; give a default/);
  });

  await t.test("stackbus_fact - a wrong number of arguments is a usage error", async () => {
    const run = await bash("stackbus_fact controller; echo rc=$?\nstackbus_fact a b c d; echo rc=$?");
    assert.equal(run.stdout, "rc=1\nrc=1\n");
    assert.match(run.stderr, /usage: stackbus_fact HOST VAR \[DEFAULT\]/);
  });

  await t.test("stackbus_fact - before the agent declared any facts it fails with a message", async () => {
    const run = await bash("stackbus_fact controller A; echo rc=$?");
    assert.equal(run.stdout, "rc=1\n");
    assert.match(run.stderr, /controller has not exported A/);
  });

  await t.test("export on one host, fact on another: the values round-trip byte for byte", async () => {
    const file = fresh();
    await bashOut(`SHARED=${q(TRICKY)}\nTOKEN=abc\nstackbus_export SHARED TOKEN`, { env: { STACKBUS_FACTS_FILE: file } });
    const facts = { controller: parseFactsFile(readFileSync(file)) };
    const out = await bash(`${factsDeclaration(facts)}\nstackbus_fact controller SHARED > got\nstackbus_fact controller TOKEN >> got`, {
      cwd: dir.path,
    });
    assert.equal(out.status, 0, out.stderr);
    assert.equal(readFileSync(join(dir.path, "got"), "utf8"), `${TRICKY}\nabc\n`);
  });

  await t.test("stackbus.sh alone (after DevStack's functions) defines the stackbus functions", async () => {
    const file = fresh();
    const out = await bashOut("X=1; stackbus_export X; declare -F stackbus_fact __stackbus_die_exit", {
      library: stackbusFunctionsPath(),
      env: { STACKBUS_FACTS_FILE: file },
    });
    assert.equal(out, "stackbus_fact\n__stackbus_die_exit");
    assert.equal(readFileSync(file, "utf8"), "X\x001\x00");
  });
});

describe("parseFactsFile - the facts file format", () => {
  it("parseFactsFile - an empty file has no facts; a name exported twice keeps its last value", () => {
    assert.deepEqual(parseFactsFile(""), {});
    assert.deepEqual(parseFactsFile("A\0one\0B\0x\0A\0two\0"), { A: "two", B: "x" });
  });

  it("parseFactsFile - a truncated record is refused with its record number", () => {
    assert.throws(
      () => parseFactsFile("A\0one\0B\0half"),
      (err: unknown) => err instanceof FactsFileError && err.code === ErrorCode.InvalidArgument && err.record === 2,
    );
    assert.throws(() => parseFactsFile("A\0one\0B\0"), (err: unknown) => err instanceof FactsFileError && err.record === 2);
  });

  it("parseFactsFile - a name that is no shell identifier is refused", () => {
    assert.throws(() => parseFactsFile("A\0one\0not-a-name\0x\0"), /record 2: "not-a-name" is not a shell variable name/);
  });

  it("parseFactsFile - a __proto__ name is an ordinary fact", () => {
    const facts = parseFactsFile("__proto__\0x\0");
    assert.equal(Object.getOwnPropertyDescriptor(facts, "__proto__")?.value, "x");
    assert.equal(Object.getPrototypeOf(facts), Object.prototype);
  });

  it("factsDeclaration - quotes hosts, names and values so bash reads them back unchanged", async () => {
    const dir = tempDir("sb-decl-");
    try {
      const script = join(dir.path, "decl.sh");
      writeFileSync(script, `${factsDeclaration({ "h'1": { V: "it's" } })}\nprintf '%s' "\${STACKBUS_FACTS["h'1/V"]}"`);
      assert.equal(await bashOut(`source ${q(script)}`), "it's");
    } finally {
      dir.remove();
    }
  });
});
