/**
 * URL credentials (`user:password@`) never leave the process that needs them: every URL a
 * log line, error message, reply, stored record or `lab show` carries goes through
 * `redactUrl` first.
 */

/** A URL's userinfo: from `scheme://` up to the `@` before the host (no `/`, `?`, `#` or space in between). */
const USERINFO = /([A-Za-z][A-Za-z0-9+.-]*:\/\/)[^/?#\s@]*@/g;

/**
 * `text` with the userinfo of every URL in it replaced by `***`:
 * `https://bot:pw@git.corp/x` becomes `https://***@git.corp/x`. A user name alone is
 * redacted too (it is often a token). Text without URLs is returned unchanged.
 */
export function redactUrl(text: string): string {
  return text.replace(USERINFO, "$1***@");
}

/** True when `text` holds a URL with userinfo (what `redactUrl` would hide). */
export function hasUrlCredentials(text: string): boolean {
  USERINFO.lastIndex = 0;
  const found = USERINFO.test(text);
  USERINFO.lastIndex = 0;
  return found;
}
