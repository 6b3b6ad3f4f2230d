import { execFileSync, spawnSync } from "node:child_process";
import { chmodSync, chownSync, existsSync, mkdirSync, readdirSync, lstatSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";

/**
 * The real DevStack, for tests: where the bundles of ../shared/mirrors are, and the
 * environment DevStack's stack.sh needs on a machine without systemd as PID 1 and
 * without PyPI (see ../shared/reference/devstack-on-this-machine.md).
 *
 * Every stand-in below is the test harness's, scoped to one test user
 * (STACKBUS_TEST_DEVSTACK_USER, default `stackbus-ds`), never the product's:
 * - a no-op `systemctl` that only that user's sudo finds first (sudoers `secure_path`);
 * - a stand-in `bindep` wheel (it lists no packages) that only that user's pip finds
 *   (`~/.config/pip/pip.conf`: no index, find-links to the wheel);
 * - apache's proxy and proxy_uwsgi modules enabled up front (DevStack enables them and
 *   then restarts apache through /bin/systemctl, which cannot work without systemd).
 * The Debian packages DevStack calls unconditionally (sudo, uuid-runtime, iptables,
 * apache2) come from scripts/setup.sh.
 */
export interface DevstackEnvironment {
  user: string;
  uid: number;
  gid: number;
  home: string;
  /** The bundles of the real repositories. */
  mirrors: string;
}

/** Why the real DevStack cannot run here (the test is skipped, saying so). */
export class DevstackUnavailable extends Error {
  override name = "DevstackUnavailable";
}

/** The checkout this testkit belongs to (packages/testkit/dist/ is three levels down). */
const CHECKOUT = new URL("../../../", import.meta.url).pathname;

/**
 * The bundle directory: STACKBUS_MIRRORS, else the nearest `shared/mirrors` beside the
 * checkout or beside one of its parent directories (`../shared/mirrors` for a checkout,
 * `../../shared/mirrors` for a worktree one level further down).
 */
export function mirrorsDir(): string {
  const given = process.env["STACKBUS_MIRRORS"];
  if (given) return given;
  let dir = resolve(CHECKOUT);
  for (;;) {
    const candidate = join(dirname(dir), "shared", "mirrors");
    if (existsSync(join(candidate, "devstack.bundle"))) return candidate;
    if (dirname(dir) === dir) return join(dirname(resolve(CHECKOUT)), "shared", "mirrors");
    dir = dirname(dir);
  }
}

let prepared: DevstackEnvironment | undefined;

function run(file: string, args: string[], options: { cwd?: string; user?: string } = {}): string {
  const argv = options.user ? ["-n", "-u", options.user, "-H", "--", file, ...args] : args;
  return execFileSync(options.user ? "sudo" : file, argv, { cwd: options.cwd, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

function has(command: string): boolean {
  try {
    run("bash", ["-c", `command -v ${command}`]);
    return true;
  } catch {
    return false;
  }
}

/**
 * Prepares (once per process, idempotently across processes) the test user and its
 * stand-ins. Throws DevstackUnavailable when this machine cannot run DevStack: not
 * root, a Debian package missing, the mirrors absent.
 */
export function devstackEnvironment(): DevstackEnvironment {
  if (prepared) return prepared;
  if (process.getuid?.() !== 0) throw new DevstackUnavailable("the real DevStack tests need root (they create the DevStack test user and its sudoers entry)");
  const mirrors = mirrorsDir();
  if (!existsSync(join(mirrors, "devstack.bundle"))) throw new DevstackUnavailable(`no DevStack bundle in ${mirrors} (set STACKBUS_MIRRORS)`);
  const missing = ["sudo", "uuidgen", "iptables", "a2enmod", "gawk", "python3"].filter((c) => !has(c));
  if (missing.length > 0) throw new DevstackUnavailable(`DevStack needs ${missing.join(", ")} (bash scripts/setup.sh installs them)`);
  const user = process.env["STACKBUS_TEST_DEVSTACK_USER"] ?? "stackbus-ds";
  try {
    run("id", ["-u", user]);
  } catch {
    run("useradd", ["-m", "-s", "/bin/bash", user]);
  }
  // The agents a test runs as DevStack's user start the CLI from this checkout.
  if (spawnSync("sudo", ["-n", "-u", user, "test", "-r", join(CHECKOUT, "package.json")]).status !== 0) {
    throw new DevstackUnavailable(`DevStack's test user ${user} cannot read ${CHECKOUT} (a directory above it is closed to other users, as mktemp -d makes it): put the checkout where other users may enter`);
  }
  const [uid, gid, home] = [Number(run("id", ["-u", user]).trim()), Number(run("id", ["-g", user]).trim()), run("bash", ["-c", `getent passwd ${user} | cut -d: -f6`]).trim()];
  const standIns = join(home, ".stackbus-test");
  const shims = join(standIns, "sudo-shims");
  const wheels = join(standIns, "wheels");
  mkdirSync(shims, { recursive: true });
  mkdirSync(wheels, { recursive: true });
  // Root-owned: the test user may not change what its sudo runs as root.
  writeFileSync(join(shims, "systemctl"), "#!/bin/sh\n# stackbus test stand-in: no systemd as PID 1 here\nexit 0\n", { mode: 0o755 });
  chmodSync(standIns, 0o755);
  writeFileSync(
    `/etc/sudoers.d/${user}`,
    `# stackbus tests: the DevStack test user\n${user} ALL=(ALL) NOPASSWD: ALL\nDefaults:${user} secure_path="${shims}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"\n`,
    { mode: 0o440 },
  );
  writeBindepWheel(join(wheels, "bindep-2.11.0-py3-none-any.whl"));
  const pipDir = join(home, ".config", "pip");
  mkdirSync(pipDir, { recursive: true });
  writeFileSync(join(pipDir, "pip.conf"), `# stackbus tests: no PyPI here; the stand-in bindep wheel only\n[global]\nno-index = true\nfind-links = ${wheels}\n`);
  chownSync(join(home, ".config"), uid, gid);
  chownSync(pipDir, uid, gid);
  chownSync(join(pipDir, "pip.conf"), uid, gid);
  for (const mod of ["proxy", "proxy_uwsgi"]) {
    try {
      run("a2query", ["-q", "-m", mod]);
    } catch {
      run("a2enmod", ["-q", mod]);
    }
  }
  prepared = { user, uid, gid, home, mirrors };
  return prepared;
}

/** A bare clone of a bundle, made once per directory: the source the checkouts are cloned from. */
export function bareMirror(bundle: string, cacheDir: string): string {
  const bare = join(cacheDir, bundle.replace(/\.bundle$/, ".git"));
  if (!existsSync(bare)) {
    mkdirSync(cacheDir, { recursive: true });
    run("git", ["clone", "-q", "--bare", join(mirrorsDir(), bundle), bare]);
  }
  return bare;
}

/**
 * A DevStack checkout at `dir` (master or a branch of the bundle), its DEST with the
 * requirements checkout stack.sh needs before anything (OFFLINE=True), both owned by the
 * test user. Nothing of DevStack's is changed.
 */
export function devstackHost(env: DevstackEnvironment, options: { topDir: string; dest: string; cacheDir: string; branch?: string }): void {
  const devstack = bareMirror("devstack.bundle", options.cacheDir);
  const requirements = bareMirror("requirements.bundle", options.cacheDir);
  run("git", ["clone", "-q", "--shared", ...(options.branch ? ["--branch", options.branch] : []), devstack, options.topDir]);
  mkdirSync(options.dest, { recursive: true });
  run("git", ["clone", "-q", "--shared", requirements, join(options.dest, "requirements")]);
  giveTo(options.topDir, env);
  giveTo(options.dest, env);
}

/** Hands a tree to the test user. */
export function giveTo(path: string, env: DevstackEnvironment): void {
  const walk = (p: string) => {
    const st = lstatSync(p);
    chownSync(p, env.uid, env.gid);
    if (st.isDirectory()) for (const e of readdirSync(p)) walk(join(p, e));
  };
  walk(path);
}

/**
 * The localrc that runs DevStack here: its own DEST, no network, no services. Test
 * hosts share one machine, so the clouds.yaml DevStack writes for the CLI
 * (/etc/openstack by default, machine-wide) goes under each host's DEST instead: two
 * stack.sh writing one file at once break each other.
 */
export function offlineLocalrc(dest: string, extra = ""): string {
  return [
    "[[local|localrc]]",
    `DEST=${dest}`,
    `OPENSTACKCLIENT_CONF_DIR=${dest}/etc/openstack`,
    `DATA_DIR=${dest}/data`,
    `LOGFILE=${dest}/logs/stack.sh.log`,
    "OFFLINE=True",
    "ENABLED_SERVICES=",
    "ADMIN_PASSWORD=secret",
    "DATABASE_PASSWORD=secret",
    "RABBIT_PASSWORD=secret",
    "SERVICE_PASSWORD=secret",
    "HOST_IP=127.0.0.1",
    extra,
    "",
  ].join("\n");
}

/**
 * Writes the stand-in bindep wheel: `bindep/__init__.py` (whose main prints nothing: no
 * extra packages) and its dist-info, zipped by Python's zipfile (python3 is one of
 * DevStack's own needs; no wheel tool is installed here).
 */
function writeBindepWheel(path: string): void {
  const script = String.raw`
import base64, hashlib, sys, zipfile
files = {
    "bindep/__init__.py": "def main():\n    return 0\n",
    "bindep-2.11.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: bindep\nVersion: 2.11.0\nSummary: stackbus test stand-in\n",
    "bindep-2.11.0.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: stackbus-testkit\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    "bindep-2.11.0.dist-info/entry_points.txt": "[console_scripts]\nbindep = bindep:main\n",
}
record = []
with zipfile.ZipFile(sys.argv[1], "w") as z:
    for name, text in files.items():
        z.writestr(name, text)
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(text.encode())}")
    record.append("bindep-2.11.0.dist-info/RECORD,,")
    z.writestr("bindep-2.11.0.dist-info/RECORD", "\n".join(record) + "\n")
`;
  run("python3", ["-c", script, path]);
}
