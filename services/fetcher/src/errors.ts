import { ErrorCode, StackbusError } from "@stackbus/protocol";

/** Context every fetcher error carries: the plugin and its URL, credentials already stripped. */
export interface PluginContext {
  plugin: string;
  url: string;
}

abstract class PluginError extends StackbusError {
  readonly plugin: string;
  readonly url: string;
  constructor(code: ErrorCode, context: PluginContext, message: string, data: Record<string, unknown>, cause?: unknown) {
    super(code, `plugin ${context.plugin} (${context.url}): ${message}`, { plugin: context.plugin, url: context.url, ...data }, { cause });
    this.plugin = context.plugin;
    this.url = context.url;
  }
}

/** The source cannot be reached or refused the clone/fetch (network, HTTP status, auth, not a repository). */
export class PluginSourceError extends PluginError {
  override name = "PluginSourceError";
  constructor(context: PluginContext, message: string, data: Record<string, unknown> = {}, cause?: unknown) {
    super(ErrorCode.PluginSource, context, message, data, cause);
  }
}

/** The ref is no branch, tag, commit or refs/... ref of the source. */
export class PluginRefError extends PluginError {
  override name = "PluginRefError";
  readonly ref: string;
  constructor(context: PluginContext, ref: string, message: string) {
    super(ErrorCode.PluginRef, context, message, { ref });
    this.ref = ref;
  }
}

/** The URL cannot be parsed, uses a transport stackbus has not, or a scheme the lab does not allow. */
export class PluginUrlError extends PluginError {
  override name = "PluginUrlError";
  constructor(context: PluginContext, message: string, data: Record<string, unknown> = {}) {
    super(ErrorCode.PluginUrl, context, message, data);
  }
}

/** The lab is offline and the plugin at this ref was never fetched. */
export class PluginOfflineError extends PluginError {
  override name = "PluginOfflineError";
  readonly ref: string;
  constructor(context: PluginContext, ref: string) {
    super(
      ErrorCode.PluginOffline,
      context,
      `the lab is offline and ref ${ref} was never fetched; fetch it once with offline off, or mirror it locally`,
      { ref },
    );
    this.ref = ref;
  }
}

/**
 * The lab registers no plugin of this name and URL (no `enable_plugin NAME URL` line in
 * any host's local.conf): the fetcher fetches only what a lab registered, so a host
 * cannot make it read another repository or probe the network.
 */
export class PluginNotRegisteredError extends PluginError {
  override name = "PluginNotRegisteredError";
  readonly lab: string;
  constructor(context: PluginContext, lab: string, otherUrls: readonly string[]) {
    const known = otherUrls.length > 0 ? ` (it registers ${context.plugin} as ${otherUrls.join(", ")})` : "";
    super(
      ErrorCode.PermissionDenied,
      context,
      `lab ${JSON.stringify(lab)} registers no such plugin: no enable_plugin ${context.plugin} ${context.url} in its local.conf files${known}; ` +
        "the fetcher fetches only the plugins a lab registers",
      { lab },
    );
    this.lab = lab;
  }
}
