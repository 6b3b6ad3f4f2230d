import {
  ErrorCode,
  StackbusError,
  redactUrl,
  type HostConfig,
  type LabPluginAccess,
  type LabShow,
  type PluginDecl,
  type PluginSettings,
} from "@stackbus/protocol";
import type { Lab, LabHost } from "./manifest.js";

/** A plugin declaration as shown anywhere but to the fetcher: its URL's credentials redacted. */
function shownPlugin(p: PluginDecl): PluginDecl {
  return { ...p, url: redactUrl(p.url) };
}

/** Plugin settings as shown: mirror URLs' credentials redacted. */
function shownSettings(settings: PluginSettings): PluginSettings {
  const copy = structuredClone(settings);
  copy.mirrors = copy.mirrors.map((m) => ({ prefix: redactUrl(m.prefix), replace: redactUrl(m.replace) }));
  return copy;
}

/** The host of a lab, or a NOT_FOUND error naming the host and the lab. */
export function labHost(lab: Lab, host: string): LabHost {
  const found = lab.hosts.find((h) => h.name === host);
  if (found === undefined) {
    throw new StackbusError(
      ErrorCode.NotFound,
      `host ${JSON.stringify(host)} is not in lab ${JSON.stringify(lab.name)} (its hosts: ${lab.hosts.map((h) => h.name).join(", ")})`,
      { lab: lab.name, host },
    );
  }
  return found;
}

/** The HostConfig message (protocol HostConfigSchema) for one host of a lab at a revision. */
export function hostConfig(lab: Lab, host: string, revision: number): HostConfig {
  const h = labHost(lab, host);
  return {
    lab: lab.name,
    host: h.name,
    revision,
    wave: h.wave,
    labels: { ...h.labels },
    localConf: h.localConf.map((s) => ({ ...s })),
    localrc: h.parsed.localrc,
    blocks: h.parsed.blocks.map((b) => ({ ...b, lines: b.lines.map((l) => ({ ...l })) })),
    plugins: h.parsed.plugins.map(shownPlugin),
    diagnostics: h.parsed.diagnostics.map((d) => ({ ...d })),
    pluginSettings: shownSettings(lab.pluginSettings),
    runner: h.runner,
    devstackUser: h.devstackUser,
    unstackErrors: lab.unstackErrors,
    finally: lab.finally.filter((f) => f.hosts.includes(h.name)).map((f) => ({ kinds: [...f.kinds], command: f.command })),
  };
}

/** What `stackbus lab show` prints: the lab at a revision, without credentials (URL userinfo redacted) or local.conf text. */
export function labShow(lab: Lab, revision: number, appliedAt: number): LabShow {
  return {
    lab: lab.name,
    revision,
    appliedAt,
    file: lab.file,
    defaults: { ...lab.defaults },
    pluginSettings: shownSettings(lab.pluginSettings),
    hosts: lab.hosts.map((h) => ({
      name: h.name,
      wave: h.wave,
      labels: { ...h.labels },
      local: h.local,
      runner: h.runner,
      ...(h.topDir !== undefined ? { topDir: h.topDir } : {}),
      ...(h.dest !== undefined ? { dest: h.dest } : {}),
      plugins: h.parsed.plugins.map(shownPlugin),
      warnings: h.parsed.diagnostics.filter((d) => d.severity === "warning").length,
    })),
    finally: lab.finally.map((f) => ({ hosts: [...f.hosts], kinds: [...f.kinds], command: f.command })),
  };
}

/**
 * What the plugin fetcher gets for a lab: its plugin settings, the source credentials, the
 * hosts, and every plugin some host's local.conf registers (name and URL as written, each
 * pair once), which are all the fetcher will resolve.
 */
export function labPluginAccess(lab: Lab): LabPluginAccess {
  const plugins: LabPluginAccess["plugins"] = [];
  const seen = new Set<string>();
  for (const h of lab.hosts) {
    for (const p of h.parsed.plugins) {
      const key = JSON.stringify([p.name, p.url]);
      if (seen.has(key)) continue;
      seen.add(key);
      plugins.push({ name: p.name, url: p.url });
    }
  }
  return {
    ...structuredClone(lab.pluginSettings),
    credentials: lab.credentials.map((c) => ({ ...c })),
    hosts: lab.hosts.map((h) => h.name),
    plugins,
  };
}
