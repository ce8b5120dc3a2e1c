// MetalLB's Service annotations, read as aliases of ours so that application charts
// written for MetalLB keep working: ours win where both are set; `metallb.io/` wins over
// the older `metallb.universe.tf/`.

/** The MetalLB annotation prefixes, newest first. */
export const METALLB_ANNOTATION_PREFIXES = ['metallb.io/', 'metallb.universe.tf/'] as const;

/** MetalLB's annotation (without prefix) -> ours (the names of `Annotation`, written out: purelb-api.ts imports this file). */
export const METALLB_ANNOTATION_ALIASES: Readonly<Record<string, string>> = {
  loadBalancerIPs: 'purelb.io/addresses',
  'address-pool': 'purelb.io/service-group',
  'allow-shared-ip': 'purelb.io/allow-shared-ip',
};

/** One MetalLB annotation found on a Service. */
export interface AliasUse {
  /** MetalLB's name, with its prefix. */
  readonly from: string;
  /** Ours. */
  readonly to: string;
  /** False when ours (or a newer MetalLB prefix) is set too and wins. */
  readonly used: boolean;
}

/**
 * The annotations as the allocator reads them: ours, plus MetalLB's where ours are
 * absent. `aliases` lists every MetalLB annotation found, used or overridden.
 */
export function withMetalLBAliases(annotations: Readonly<Record<string, string>> | undefined): { annotations: Readonly<Record<string, string>>; aliases: AliasUse[] } {
  const a = annotations ?? {};
  const out: Record<string, string> = { ...a };
  const aliases: AliasUse[] = [];
  for (const prefix of METALLB_ANNOTATION_PREFIXES) {
    for (const [name, ours] of Object.entries(METALLB_ANNOTATION_ALIASES)) {
      const from = `${prefix}${name}`;
      const value = a[from];
      if (value === undefined) continue;
      const used = out[ours] === undefined;
      if (used) out[ours] = value;
      aliases.push({ from, to: ours, used });
    }
  }
  return { annotations: out, aliases };
}

/** True for an annotation the allocator reads (ours, or a MetalLB alias). */
export function isReadAnnotation(key: string): boolean {
  return key.startsWith('purelb.io/') || METALLB_ANNOTATION_PREFIXES.some((p) => key.startsWith(p) && Object.hasOwn(METALLB_ANNOTATION_ALIASES, key.slice(p.length)));
}
