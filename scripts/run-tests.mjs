#!/usr/bin/env node
// Runs every compiled test file of the workspace in one `node --test`, so the run ends
// with a single "# tests / # pass / # fail" summary. Node 20 does not expand globs.
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import { join, relative } from "node:path";

const root = new URL("..", import.meta.url).pathname;
const filter = process.argv.slice(2);

function testFiles(dir) {
  if (!existsSync(dir)) return [];
  const out = [];
  for (const entry of readdirSync(dir)) {
    const path = join(dir, entry);
    if (entry === "node_modules") continue;
    if (statSync(path).isDirectory()) out.push(...testFiles(path));
    else if (entry.endsWith(".test.js")) out.push(path);
  }
  return out;
}

const roots = [];
for (const group of ["packages", "services"]) {
  for (const name of readdirSync(join(root, group))) roots.push(join(root, group, name, "dist"));
}
roots.push(join(root, "test", "dist"));

let files = roots.flatMap(testFiles).sort();
if (filter.length > 0) files = files.filter((f) => filter.some((x) => f.includes(x)));
if (files.length === 0) {
  console.error("no test files found: run `npm run build` first");
  process.exit(1);
}
console.error(`running ${files.length} test files`);
const concurrency = process.env.STACKBUS_TEST_CONCURRENCY ?? "2";
const result = spawnSync(
  process.execPath,
  ["--test", `--test-concurrency=${concurrency}`, "--test-timeout=600000", ...files.map((f) => relative(root, f))],
  { cwd: root, stdio: "inherit", env: { ...process.env, TURBO_TELEMETRY_DISABLED: "1" } },
);
process.exit(result.status ?? 1);
