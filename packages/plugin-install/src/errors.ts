import { ErrorCode, StackbusError } from "@stackbus/protocol";

/** The plugin's archive is not in the object store (deleted, or another NATS account). */
export class PluginArchiveMissingError extends StackbusError {
  override name = "PluginArchiveMissingError";
  readonly plugin: string;
  readonly object: string;
  constructor(plugin: string, object: string) {
    super(ErrorCode.NotFound, `plugin ${plugin}: archive ${object} is not in the object store; resolve the plugin again`, {
      plugin,
      object,
    });
    this.plugin = plugin;
    this.object = object;
  }
}

/** DEST, or the plugin's directory in it, cannot be written. Names the path and the system's reason. */
export class PluginInstallError extends StackbusError {
  override name = "PluginInstallError";
  readonly plugin: string;
  readonly path: string;
  constructor(plugin: string, path: string, reason: string, cause: unknown) {
    const code = (cause as NodeJS.ErrnoException | undefined)?.code;
    const denied = code === "EACCES" || code === "EPERM" || code === "EROFS";
    super(
      denied ? ErrorCode.PermissionDenied : ErrorCode.Internal,
      `plugin ${plugin}: cannot write ${path}: ${reason}`,
      { plugin, path, reason, ...(code ? { errno: code } : {}) },
      { cause },
    );
    this.plugin = plugin;
    this.path = path;
  }
}
