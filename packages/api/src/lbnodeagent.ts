// LBNodeAgent validation beyond what the CRD can say: the same rules as its schema, for
// objects admitted before the schema had them, plus what only a JavaScript engine can
// tell (localint must compile as the agent compiles it: a JavaScript RegExp).
import type { LBNodeAgent } from './purelb-api.ts';

/** The longest link name Linux takes: IFNAMSIZ (16) less the terminating NUL. */
export const MAX_LINK_NAME_BYTES = 15;

/**
 * Names `extlbint` may not have: `lo` is the loopback link; `all` and `default` are the
 * per-family sysctl folders (`/proc/sys/net/ipv4/conf/all`), and `.`/`..` path parts.
 */
export const RESERVED_LINK_NAMES: readonly string[] = ['lo', 'all', 'default', '.', '..'];

/** What `extlbint` may hold: the CRD's pattern (no `/`, `:`, whitespace, nothing a shell or sysfs path would trip on). */
export const LINK_NAME_PATTERN = /^[A-Za-z0-9_.-]+$/;

export interface LBNodeAgentSettings {
  readonly extlbint: string;
  /** `default` (the default route's interface, per family) or the compiled expression. */
  readonly localint: 'default' | RegExp;
  readonly sendgarp: boolean;
  /** The agent makes ARP strict itself (net.ipv4.conf.all.arp_ignore=1, arp_announce=2; see the agent's arp-safety.ts). */
  readonly setARPSysctls: boolean;
}

export type ParsedLBNodeAgent =
  | { readonly ok: true; readonly settings: LBNodeAgentSettings }
  | { readonly ok: false; readonly name: string; readonly reason: string; readonly field: string; readonly message: string };

/**
 * Why a virtual interface name is refused, or undefined when it is a plain new link name.
 * The agent also refuses, at run time, a name the node already uses for its LAN (no
 * admission rule can know the node's links).
 */
export function linkNameProblem(name: unknown): string | undefined {
  if (typeof name !== 'string' || name === '') return 'must be a link name such as kube-lb0';
  if (Buffer.byteLength(name, 'utf8') > MAX_LINK_NAME_BYTES) return `"${name}" is ${Buffer.byteLength(name, 'utf8')} bytes; Linux link names are at most ${MAX_LINK_NAME_BYTES}`;
  if (RESERVED_LINK_NAMES.includes(name)) return `"${name}" is reserved (${name === 'lo' ? 'the loopback link' : name === 'all' || name === 'default' ? 'a sysctl folder name' : 'a path part'}); name a new link such as kube-lb0`;
  if (/[/\s:]/.test(name)) return `"${name}" holds a "/", ":" or whitespace, which Linux link names may not`;
  if (!LINK_NAME_PATTERN.test(name)) return `"${name}" may hold only letters, digits, "_", "." and "-"`;
  return undefined;
}

/** Why a `localint` value is refused, or undefined: `default`, or a regular expression that compiles. */
export function localIntProblem(value: unknown): string | undefined {
  if (typeof value !== 'string' || value === '') return 'must be "default" or a regular expression matching interface names (an empty one would match every link, the loopback included)';
  if (value === 'default') return undefined;
  try {
    new RegExp(value);
    return undefined;
  } catch (e) {
    return `"${value}" is not a regular expression: ${e instanceof Error ? e.message.replace(/^Invalid regular expression: /, '') : String(e)}`;
  }
}

/** Validates an LBNodeAgent and applies its defaults. Invalid: the reason, the field and a message naming both. */
export function parseLBNodeAgent(a: LBNodeAgent): ParsedLBNodeAgent {
  const name = a.metadata.name;
  const raw: unknown = a.spec?.local;
  // Stored under an older schema, `local` can be anything: not an object is not "all defaults".
  if (raw !== undefined && raw !== null && (typeof raw !== 'object' || Array.isArray(raw))) {
    return { ok: false, name, reason: 'InvalidLBNodeAgent', field: 'spec.local', message: `LBNodeAgent "${name}": spec.local: must be an object (extlbint, localint, sendgarp, setARPSysctls), not ${Array.isArray(raw) ? 'a list' : `${typeof raw} ${JSON.stringify(raw)}`}` };
  }
  const l = a.spec?.local ?? {};
  const bad = (field: string, what: string): ParsedLBNodeAgent => ({
    ok: false,
    name,
    reason: 'InvalidLBNodeAgent',
    field,
    message: `LBNodeAgent "${name}": ${field}: ${what}`,
  });
  const extlbint = l.extlbint ?? 'kube-lb0';
  const linkProblem = linkNameProblem(extlbint);
  if (linkProblem) return bad('spec.local.extlbint', linkProblem);
  const localint = l.localint ?? 'default';
  const localProblem = localIntProblem(localint);
  if (localProblem) return bad('spec.local.localint', localProblem);
  if (l.sendgarp !== undefined && typeof l.sendgarp !== 'boolean') return bad('spec.local.sendgarp', 'must be true or false');
  if (l.setARPSysctls !== undefined && typeof l.setARPSysctls !== 'boolean') return bad('spec.local.setARPSysctls', 'must be true or false');
  return { ok: true, settings: { extlbint, localint: localint === 'default' ? 'default' : new RegExp(localint), sendgarp: l.sendgarp ?? false, setARPSysctls: l.setARPSysctls ?? false } };
}
