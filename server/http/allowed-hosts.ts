// DNS-rebinding defence: a page on a rebinding domain reaches a loopback port with its own domain
// in Host. Loopback names, IP literals (which no DNS answer can rebind) and ADMIN_ALLOWED_HOSTS pass.
import { isIP } from 'node:net';

/** The host name of a Host header value: lower case, port and IPv6 brackets removed; null if malformed. */
export function hostName(host: string | undefined): string | null {
  if (!host) return null;
  const h = host.trim().toLowerCase();
  const v6 = /^\[([0-9a-f:.]+)\](?::\d{1,5})?$/.exec(h);
  if (v6) return v6[1]!;
  const m = /^([a-z0-9.-]+?)\.?(?::\d{1,5})?$/.exec(h);
  return m ? m[1]! : null;
}

export class AllowedHosts {
  private readonly names: Set<string>;

  /** `extra`: host names (a port, if given, is ignored) from ADMIN_ALLOWED_HOSTS. */
  constructor(extra: readonly string[] = []) {
    this.names = new Set(extra.map((e) => hostName(e)).filter((n): n is string => n !== null));
  }

  allows(host: string | undefined): boolean {
    const name = hostName(host);
    if (name === null) return false;
    if (name === 'localhost' || name.endsWith('.localhost')) return true;
    if (isIP(name)) return true;
    return this.names.has(name);
  }

  /** Why a request was refused, with the fix. */
  refusal(host: string | undefined): string {
    return `Host ${JSON.stringify(host ?? '')} is not allowed (a defence against DNS rebinding): use a loopback name or IP address, or add the name to ADMIN_ALLOWED_HOSTS`;
  }
}
