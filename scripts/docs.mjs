#!/usr/bin/env node
// Writes the generated docs from the built code: docs/lab.md from the lab manifest's schema,
// docs/cli.md from the CLI's own --help. With --check, writes nothing and exits 1 naming
// each file that is stale. Run `npm run build` first.
import { readFileSync, writeFileSync } from "node:fs";

const root = new URL("..", import.meta.url).pathname;
const check = process.argv.includes("--check");

const { labReference } = await import(`${root}packages/lab/dist/index.js`);
const generated = { "docs/lab.md": labReference() };
try {
  const { cliReference } = await import(`${root}packages/cli/dist/reference.js`);
  generated["docs/cli.md"] = cliReference();
} catch (err) {
  if (err?.code !== "ERR_MODULE_NOT_FOUND") throw err;
}

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
