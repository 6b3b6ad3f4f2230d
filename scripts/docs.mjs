#!/usr/bin/env node
// Writes the generated docs from the built code: docs/lab.md from the lab manifest's schema,
// docs/cli.md from the CLI's own --help. With --check, writes nothing and exits 1 naming
// each file that is stale. Run `npm run build` first.
import { readFileSync, writeFileSync } from "node:fs";

const root = new URL("..", import.meta.url).pathname;
const check = process.argv.includes("--check");

let generators;
try {
  generators = [await import(`${root}packages/lab/dist/index.js`), await import(`${root}packages/cli/dist/reference.js`)];
} catch (err) {
  if (err?.code !== "ERR_MODULE_NOT_FOUND") throw err;
  console.error(`docs: ${err.message}: run \`npm run build\` first`);
  process.exit(1);
}
const [{ labReference }, { cliReference }] = generators;
const generated = { "docs/lab.md": labReference(), "docs/cli.md": cliReference() };

let stale = 0;
for (const [file, text] of Object.entries(generated)) {
  let current = "";
  try {
    current = readFileSync(`${root}${file}`, "utf8");
  } catch {
    // a missing file is stale
  }
  if (current === text) continue;
  if (check) {
    console.error(`${file} is stale: run node scripts/docs.mjs`);
    stale++;
  } else {
    writeFileSync(`${root}${file}`, text);
    console.error(`wrote ${file}`);
  }
}
process.exit(stale > 0 ? 1 : 0);
