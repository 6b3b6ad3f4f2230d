import js from "@eslint/js";
import tseslint from "typescript-eslint";

// The dependency rules of docs/architecture.md ("Dependency rules"), checked on every
// workspace by `npm run lint` (and so by scripts/test.sh and CI).

/** The services, by package name: they meet only on the bus. */
const SERVICES = ["@stackbus/agent", "@stackbus/coordinator", "@stackbus/config-service", "@stackbus/fetcher-service"];

/** What domain logic is handed instead of importing: the NATS client, processes, git. */
const IO_MODULES = ["@nats-io/*", "@stackbus/bus", "execa", "isomorphic-git", "node:child_process", "child_process"];

/** The host's file system: domain logic takes it as an argument too. */
const FS_MODULES = ["node:fs", "node:fs/promises", "fs", "fs/promises"];

const publicEntry = { group: ["@stackbus/*/src/*", "@stackbus/*/dist/*"], message: "Import a package through its public entry." };
const relativeService = { group: ["**/services/*"], message: "Packages never import services; services meet on the bus." };
const noService = {
  group: SERVICES.flatMap((s) => [s, `${s}/*`]),
  message: "Only the CLI (packages/cli, the composition root) imports services; everything else meets them on the bus.",
};
const noIo = {
  group: IO_MODULES,
  message: "Domain logic (protocol, engine, localconf, plugin ordering) takes the NATS client, processes and git as arguments.",
};
const noFs = { group: FS_MODULES, message: "Domain logic takes its file system as an argument (see MergeFiles)." };
const noInternal = { group: ["@stackbus/*"], message: "The protocol package depends on nothing internal." };

/** `no-restricted-imports` with these patterns (a later config object replaces the rule, so each lists all it needs). */
const imports = (...patterns) => ["error", { patterns }];

/** The same ban for `import("...")` expressions, which `no-restricted-imports` does not see. */
const dynamicImports = (modules, message) => [
  "error",
  {
    selector: `ImportExpression[source.value=/^(${modules.map((m) => m.replace(/[/.]/g, "\\$&").replace("*", ".*")).join("|")})(\\/.*)?$/]`,
    message,
  },
];

const TESTS = ["**/*.test.ts", "**/*.test-helper.ts"];

/** Domain logic: the run engine, local.conf, plugin ordering and settings. */
const DOMAIN = [
  "packages/engine/src/**/*.ts",
  "packages/localconf/src/**/*.ts",
  "packages/plugins/src/order.ts",
  "packages/plugins/src/settings.ts",
  "packages/plugins/src/errors.ts",
];

export default tseslint.config(
  { ignores: ["**/dist/**", "**/node_modules/**", ".stackbus/**"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "no-restricted-imports": imports(publicEntry, relativeService),
    },
  },
  {
    // No function over 120 lines outside tests.
    files: ["packages/*/src/**/*.ts", "services/*/src/**/*.ts", "test/src/**/*.ts"],
    ignores: [...TESTS],
    rules: { "max-lines-per-function": ["error", { max: 120 }] },
  },
  {
    // Packages never import a service (the CLI, below, is the one exception).
    files: ["packages/*/src/**/*.ts"],
    ignores: ["packages/cli/**"],
    rules: {
      "no-restricted-imports": imports(publicEntry, relativeService, noService),
      "no-restricted-syntax": dynamicImports(SERVICES, noService.message),
    },
  },
  {
    // A service never imports another service.
    files: ["services/*/src/**/*.ts"],
    rules: {
      "no-restricted-imports": imports(publicEntry, relativeService, noService),
      "no-restricted-syntax": dynamicImports(SERVICES, noService.message),
    },
  },
  {
    // The CLI is the composition root: it starts services and agents, so it may import them.
    files: ["packages/cli/src/**/*.ts"],
    rules: { "no-restricted-imports": imports(publicEntry) },
  },
  {
    // Domain logic takes its I/O as arguments; its tests may drive real bash and files.
    files: DOMAIN,
    ignores: [...TESTS, "packages/localconf/src/node-files.ts"],
    rules: {
      "no-restricted-imports": imports(publicEntry, relativeService, noService, noIo, noFs),
      "no-restricted-syntax": dynamicImports([...SERVICES, ...IO_MODULES, ...FS_MODULES], "Domain logic takes its I/O as arguments."),
    },
  },
  {
    // localconf's adapter to the host's file system (nodeMergeFiles): files, still no NATS or processes.
    files: ["packages/localconf/src/node-files.ts"],
    rules: {
      "no-restricted-imports": imports(publicEntry, relativeService, noService, noIo),
      "no-restricted-syntax": dynamicImports([...SERVICES, ...IO_MODULES], "Domain logic takes its I/O as arguments."),
    },
  },
  {
    // The protocol: data, schemas, subjects and errors; nothing internal, no I/O.
    files: ["packages/protocol/src/**/*.ts"],
    ignores: TESTS,
    rules: {
      "no-restricted-imports": imports(publicEntry, relativeService, noInternal, noIo, noFs),
      "no-restricted-syntax": dynamicImports(["@stackbus/*", ...IO_MODULES, ...FS_MODULES], "The protocol imports nothing internal and does no I/O."),
    },
  },
);
