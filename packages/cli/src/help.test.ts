import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Command } from "commander";
import { buildProgram } from "./main.js";

function leaves(cmd: Command, path: string[] = []): Array<{ path: string; cmd: Command }> {
  const subs = cmd.commands.filter((c) => c.name() !== "help");
  if (subs.length === 0) return [{ path: path.join(" "), cmd }];
  return subs.flatMap((c) => leaves(c, [...path, c.name()]));
}

function helpOf(cmd: Command): string {
  let out = "";
  cmd.configureOutput({ writeOut: (s) => (out += s), writeErr: (s) => (out += s) });
  cmd.outputHelp();
  return out;
}

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
});
