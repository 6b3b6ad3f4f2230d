import { userInfo } from "node:os";
import { execa } from "execa";
import { ErrorCode, StackbusError, type HostConfig } from "@stackbus/protocol";

/** Who runs DevStack's scripts on this host, and how the agent starts them as that user. */
export interface RunAs {
  user: string;
  uid: number;
  gid: number;
  home: string;
  /** True when the agent runs as root and starts the scripts with `sudo -u USER`. */
  sudo: boolean;
}

/** The user is missing, or is root (DevStack refuses to run as root). */
export class DevstackUserError extends StackbusError {
  override name = "DevstackUserError";
  constructor(message: string, readonly user: string) {
    super(ErrorCode.InvalidArgument, message, { user });
  }
}

/**
 * The user DevStack's scripts run as: an agent running as root runs them as the host's
 * `devstackUser` (DevStack refuses root), an agent running as another user runs them as
 * itself.
 */
export async function runAsFor(config: HostConfig): Promise<RunAs> {
  const uid = process.getuid?.() ?? 0;
  if (uid !== 0) {
    const me = userInfo();
    return { user: me.username, uid: me.uid, gid: me.gid, home: me.homedir, sudo: false };
  }
  const user = config.devstackUser;
  if (user === "root") {
    throw new DevstackUserError(`devstackUser of host ${config.host} is root, but DevStack refuses to run as root: name its own user (the lab's defaults.devstackUser or the host's devstackUser)`, user);
  }
  const found = await execa("getent", ["passwd", user], { reject: false });
  const fields = found.stdout.trim().split(":");
  if (found.exitCode !== 0 || fields.length < 7) {
    throw new DevstackUserError(
      `user ${JSON.stringify(user)} (devstackUser of host ${config.host}) does not exist on this host: create it as DevStack's guide says ` +
        `(useradd -s /bin/bash -d /opt/stack -m ${user}, with password-less sudo in /etc/sudoers.d/${user}) or set devstackUser in the lab`,
      user,
    );
  }
  return { user, uid: Number(fields[2]), gid: Number(fields[3]), home: fields[5] ?? "/", sudo: true };
}

/** The command line that runs `argv` as `runAs` (through sudo when the agent is root). */
export function asUser(runAs: RunAs, env: Record<string, string>, argv: readonly string[]): { file: string; args: string[]; env: Record<string, string> | undefined } {
  if (!runAs.sudo) return { file: argv[0] as string, args: argv.slice(1), env };
  const assignments = Object.entries(env).map(([k, v]) => `${k}=${v}`);
  return { file: "sudo", args: ["-n", "-u", runAs.user, "-H", "--", "env", ...assignments, ...argv], env: undefined };
}
