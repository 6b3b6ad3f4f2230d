import { Option, type Command } from "commander";
import { resolve } from "node:path";
import { EXIT, exitWith, UsageError } from "../common.js";

interface AuthFlags {
  lab: string;
  out: string;
  mode: "nkey" | "password";
  url?: string;
  replicas: string;
  installDir?: string;
  tlsCa?: string;
  tlsCert?: string;
  tlsKey?: string;
  tlsVerifyClients?: boolean;
  force?: boolean;
  update?: boolean;
  listen?: string;
  http?: string;
  storeDir?: string;
}

export function registerAuthCommands(program: Command): void {
  const auth = program.command("auth").description("Security: NATS identities and permissions for a lab.");
  auth
    .command("gen")
    .description("Write NATS users (nkeys or passwords) with least-privilege permissions per role, the server configs that use them, and each identity's environment file.")
    .requiredOption("--lab <file>", "the lab manifest (reads lab: and hosts[].name)")
    .requiredOption("--out <dir>", "where to write (files holding secrets are mode 0600)")
    .addOption(new Option("--mode <mode>", "nkey: no secret on the server; password: bcrypt hashes on the server").choices(["nkey", "password"]).default("nkey"))
    .option("--url <urls>", "NATS_URL written in the env files (comma-separated for a cluster)")
    .option("--replicas <n>", "JetStream replicas (3 on a cluster)", "1")
    .option("--install-dir <dir>", "where the identity files will live on the hosts (default /etc/stackbus)")
    .option("--listen <host:port>", "the client address nats-server listens on (default 0.0.0.0:4222)")
    .option("--http <host:port>", "also write an HTTP monitoring port (/healthz), e.g. 127.0.0.1:8222")
    .option("--store-dir <dir>", "nats-server's JetStream store directory (default /var/lib/nats)")
    .option("--tls-ca <file>", "CA certificate clients verify the server with")
    .option("--tls-cert <file>", "the server's certificate")
    .option("--tls-key <file>", "the server's key")
    .option("--tls-verify-clients", "require client certificates signed by the CA (mutual TLS)")
    .option("--update", "keep the identities of the earlier output in --out: only hosts new to the lab get new ones (the others keep working); writes the server configs again")
    .option("--force", "replace an earlier output with all new identities (locks out every identity installed from it)")
    .addHelpText("after", "\nExamples:\n  stackbus auth gen --lab lab.yaml --out ./lab1-auth --url nats://controller:4222\n  stackbus auth gen --lab lab.yaml --out ./lab1-auth --mode password --replicas 3 --url nats://n1:4222,nats://n2:4222,nats://n3:4222\n  stackbus auth gen --lab lab.yaml --out ./lab1-auth --update      # after adding a host to lab.yaml\n\nSee deploy/README.md for which file goes to which host.")
    .action(
      exitWith(async (flags: AuthFlags) => {
        const tls = flags.tlsCa && flags.tlsCert && flags.tlsKey ? { ca: flags.tlsCa, cert: flags.tlsCert, key: flags.tlsKey, verifyClients: Boolean(flags.tlsVerifyClients) } : undefined;
        const { authGenFromManifestFile } = await import("@stackbus/auth");
        if (flags.update && flags.force) throw new UsageError("--update keeps the earlier identities and --force replaces them: give one");
        const out = resolve(flags.out);
        const { generated, written, update } = await authGenFromManifestFile(resolve(flags.lab), out, {
          mode: flags.mode,
          replicas: Number(flags.replicas),
          localDir: out,
          ...(flags.url ? { servers: flags.url } : {}),
          ...(flags.installDir ? { installDir: flags.installDir } : {}),
          ...(flags.listen ? { listen: flags.listen } : {}),
          ...(flags.http ? { http: flags.http } : {}),
          ...(flags.storeDir ? { storeDir: flags.storeDir } : {}),
          ...(tls ? { tls } : {}),
          overwrite: Boolean(flags.force),
          update: Boolean(flags.update),
        });
        process.stdout.write(`wrote ${written.length} files for lab ${generated.lab} (${generated.users.length} identities) to ${out}; see its README.md\n`);
        if (update) {
          process.stdout.write(`kept ${update.kept.length} identities${update.added.length ? `; new: ${update.added.join(", ")}` : ""}${update.removed.length ? `; removed: ${update.removed.join(", ")}` : ""}\n`);
          process.stdout.write("install the new identities' files, and the server config on the NATS server(s), then reload it (nats-server --signal reload)\n");
        }
        return EXIT.ok;
      }),
    );
}
