import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { readFileSync } from "node:fs";
import { buildProgram } from "./main.js";
import { cliReference, helpText as helpOf, leafCommands as leaves } from "./reference.js";

describe("cli - help", () => {
  const program = buildProgram();

  it("every command has a description and help with examples", () => {
    const all = leaves(program);
    assert.ok(all.length >= 17, `found ${all.length} commands`);
    for (const { path, cmd } of all) {
      assert.ok(cmd.description().length > 10, `${path} has a description`);
      assert.match(helpOf(cmd), /Example/, `stackbus ${path} --help shows examples`);
    }
  });

  it("the top-level help documents the exit codes", () => {
    const help = helpOf(program);
    for (const line of [/0\s+success/, /1\s+the run \(or command\) failed/, /2\s+usage error/, /3\s+cannot reach the bus/]) assert.match(help, line);
  });

  it("docs/cli.md is every command's real --help (run `node scripts/docs.mjs` after changing an option)", () => {
    const doc = readFileSync(new URL("../../../docs/cli.md", import.meta.url), "utf8");
    assert.equal(doc, cliReference(), "docs/cli.md is stale: run `node scripts/docs.mjs` and commit it");
    for (const { path } of leaves(program)) assert.match(doc, new RegExp(`### stackbus ${path}\n\n\`\`\`\nUsage: stackbus ${path} `), path);
  });
});
