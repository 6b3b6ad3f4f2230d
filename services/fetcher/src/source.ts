import { createHash } from "node:crypto";
import { isAbsolute, normalize } from "node:path";
import { fileURLToPath } from "node:url";
import { DEFAULT_PLUGIN_LIMITS, redactUrl, type LabPluginAccess, type PluginLimits } from "@stackbus/protocol";
import { PluginUrlError } from "./errors.js";

/** How a plugin source is reached, and the lab setting (`allowSchemes`) that permits it. */
export type SourceKind = "https" | "http" | "file" | "path";

/** Where a plugin comes from, after the lab's mirrors and credentials are applied. */
export interface PluginSource {
  kind: SourceKind;
  /** The URL as requested, credentials redacted (`https://***@host/...`): what replies, messages, logs and the index show. */
  display: string;
  /** The URL as requested without its credentials: the `origin` of the checkout on the hosts. */
  origin: string;
  /** The URL or path actually contacted (after a mirror rewrite), credentials redacted. */
  location: string;
  /** True when a mirror prefix rewrote the URL. */
  mirrored: boolean;
  /** http(s): the URL given to isomorphic-git. file/path: the absolute path of the repository. */
  target: string;
  /** Basic-auth credentials for http(s), from the URL itself or the lab's credentials. */
  auth?: { username: string; password: string };
  /** Strings that must never appear in a log line or message (passwords). */
  secrets: string[];
  /** The lab's bounds on a plugin, applied to every download from the source and every archive built from it. */
  limits: PluginLimits;
  /**
   * Identity of the source: one cache directory per key. Credentials are part of it, so
   * a clone made with one lab's credentials never serves a lab without them.
   */
  key: string;
}

const SCHEME_URL = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//;
const USERINFO = /^([A-Za-z][A-Za-z0-9+.-]*:\/\/)([^/?#]*)@/;
const SCP_LIKE = /^[^/:]+:[^/]/;

/** `url` without a `user:password@` part. */
export function stripCredentials(url: string): string {
  return url.replace(USERINFO, "$1");
}

/**
 * Replaces every secret in `text` by `***`, and the userinfo of every URL in it
 * (`redactUrl`), so credentials never reach a log or an error message.
 */
export function redact(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const secret of secrets) {
    if (secret.length === 0) continue;
    out = out.split(secret).join("***");
    const encoded = encodeURIComponent(secret);
    if (encoded !== secret) out = out.split(encoded).join("***");
  }
  return redactUrl(out);
}

/**
 * Works out how to reach a plugin's URL in a lab: applies the longest matching mirror
 * prefix (DevStack's GIT_BASE, for air-gapped labs), recognises the transport, checks it
 * against the lab's allowed schemes, and picks credentials (from the URL, else the
 * longest matching credential prefix).
 *
 * Transports: `https://` and `http://` (isomorphic-git), `file:///abs/path` and
 * `/abs/path` (a local repository, bare or not, served by `git upload-pack`). ssh, git://
 * and relative paths are refused with a PluginUrlError naming the plugin and URL.
 */
export function resolveSource(plugin: string, url: string, access: LabPluginAccess): PluginSource {
  const display = redactUrl(url);
  const origin = stripCredentials(url);
  const context = { plugin, url: display };
  if ([...url].some((ch) => /\s/.test(ch) || ch.charCodeAt(0) < 0x20 || ch.charCodeAt(0) === 0x7f)) {
    throw new PluginUrlError(context, "the URL may not contain spaces or control characters");
  }
  const embedded = embeddedAuth(url);
  const mirror = longestPrefix(access.mirrors, origin);
  const contacted = mirror ? mirror.replace + origin.slice(mirror.prefix.length) : origin;
  const location = redactUrl(contacted);
  const kind = kindOf(context, contacted);
  if (!access.allowSchemes.includes(kind)) {
    throw new PluginUrlError(
      context,
      `${describeKind(kind)} sources are not allowed in this lab (allowed: ${access.allowSchemes.join(", ") || "none"})` +
        (mirror ? ` (mirrored to ${location})` : ""),
      { kind, allowed: access.allowSchemes },
    );
  }
  const mirrorAuth = mirror ? embeddedAuth(contacted) : undefined;
  const secrets = [...access.credentials.map((c) => c.password), ...[embedded, mirrorAuth].map((a) => a?.password ?? "")].filter(
    (s) => s.length > 0,
  );
  const source: PluginSource = {
    kind,
    display,
    origin,
    location,
    mirrored: mirror !== undefined,
    target: kind === "http" || kind === "https" ? contacted : localPath(context, kind, contacted),
    secrets,
    limits: access.limits ?? DEFAULT_PLUGIN_LIMITS,
    key: "",
  };
  if (kind === "http" || kind === "https") {
    const auth = (mirror ? mirrorAuth : embedded) ?? longestPrefix(access.credentials, stripCredentials(contacted));
    if (auth) source.auth = { username: auth.username, password: auth.password };
    if (mirrorAuth) source.target = stripCredentials(contacted);
  }
  const identity = source.auth ? `${source.auth.username}\n${source.auth.password}` : "";
  source.key = createHash("sha256").update(`${kind}\n${location}\n${identity}`).digest("hex").slice(0, 32);
  return source;
}

function kindOf(context: { plugin: string; url: string }, location: string): SourceKind {
  location = redactUrl(location);
  if (location.startsWith("/")) return "path";
  const scheme = SCHEME_URL.exec(location)?.[1]?.toLowerCase();
  if (scheme === "http" || scheme === "https") {
    let parsed: URL;
    try {
      parsed = new URL(location);
    } catch {
      throw new PluginUrlError(context, `cannot parse ${location} as a URL`);
    }
    if (parsed.hostname === "") throw new PluginUrlError(context, `${location} names no host`);
    return scheme;
  }
  if (scheme === "file") return "file";
  if (scheme !== undefined) {
    throw new PluginUrlError(
      context,
      `the ${scheme}:// transport is not supported; use https://, http://, file:// or an absolute path, or map it with a mirror prefix`,
      { scheme },
    );
  }
  if (SCP_LIKE.test(location)) {
    throw new PluginUrlError(context, "ssh-style addresses (host:path) are not supported; use https://, http://, file:// or an absolute path");
  }
  throw new PluginUrlError(context, "a local plugin path must be absolute (or a file:// URL)");
}

function localPath(context: { plugin: string; url: string }, kind: SourceKind, location: string): string {
  let path = location;
  if (kind === "file") {
    let parsed: URL;
    try {
      parsed = new URL(location);
    } catch {
      throw new PluginUrlError(context, `cannot parse ${location} as a file:// URL`);
    }
    if (parsed.hostname !== "" && parsed.hostname !== "localhost") {
      throw new PluginUrlError(context, `file:// URLs must name a local path (file:///path), not host ${parsed.hostname}`);
    }
    path = fileURLToPath(parsed);
  }
  if (!isAbsolute(path)) throw new PluginUrlError(context, "a local plugin path must be absolute");
  return normalize(path);
}

function describeKind(kind: SourceKind): string {
  return kind === "path" ? "local path" : `${kind}://`;
}

function embeddedAuth(url: string): { username: string; password: string } | undefined {
  const userinfo = USERINFO.exec(url)?.[2];
  if (userinfo === undefined) return undefined;
  const at = userinfo.indexOf(":");
  const decode = (s: string) => {
    try {
      return decodeURIComponent(s);
    } catch {
      return s;
    }
  };
  return at < 0
    ? { username: decode(userinfo), password: "" }
    : { username: decode(userinfo.slice(0, at)), password: decode(userinfo.slice(at + 1)) };
}

function longestPrefix<T extends { prefix: string }>(entries: readonly T[], url: string): T | undefined {
  let best: T | undefined;
  for (const entry of entries) {
    if (url.startsWith(entry.prefix) && (!best || entry.prefix.length > best.prefix.length)) best = entry;
  }
  return best;
}
