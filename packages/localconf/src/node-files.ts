import { mkdirSync, readFileSync, rmdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import type { MergeFiles } from "./merge.js";

/** The host's own file system, for mergeConfigGroup. */
export const nodeMergeFiles: MergeFiles = {
  kind(path) {
    let st;
    try {
      st = statSync(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw err;
    }
    return st.isFile() ? "file" : st.isDirectory() ? "directory" : "other";
  },
  read(path) {
    try {
      return readFileSync(path, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return null;
      throw err;
    }
  },
  write: (path, text) => writeFileSync(path, text),
  makeDirs: (dir) => void mkdirSync(dir, { recursive: true }),
  remove: (path) => rmSync(path, { force: true }),
  removeDir: (dir) => rmdirSync(dir),
};
