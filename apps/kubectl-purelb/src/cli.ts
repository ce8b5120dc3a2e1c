// The command line: parse, read, call the pure report, print, exit status. Never writes
// to the cluster.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { KubeApiError, KubeClient, KubeConfigError, loadKubeConfig } from '@purelb/k8s-glue';
import { electionReport } from './election.ts';
import { ExitCode, UnreadableError, UsageError } from './errors.ts';
import { OUTPUT_FORMATS, type OutputFormat, formatData } from './output.ts';
import { poolsReport } from './pools.ts';
import { readSnapshot } from './read.ts';
import { renderElection, renderPools, renderServices, renderStatus, renderValidation } from './render.ts';
import { servicesReport } from './services.ts';
import type { ClusterSnapshot, Problem } from './snapshot.ts';
import { statusReport } from './status.ts';
import { type ValidationReport, validateManifests } from './validate.ts';
import { VERSION } from './version.ts';
import { planMetalLBMigration } from './migrate-metallb.ts';
import { applyMigration, readMetalLB } from './migrate-shell.ts';
import { renderMigration } from './render.ts';
import { parseSubnet } from '@purelb/ipam-core';

export const SUBCOMMANDS = ['status', 'pools', 'services', 'election', 'validate', 'migrate'] as const;
export type Subcommand = (typeof SUBCOMMANDS)[number];

/** What the shell needs from the world; tests pass their own. */
export interface CliIo {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  readonly env?: NodeJS.ProcessEnv | undefined;
  readonly readFile?: ((path: string) => string) | undefined;
  readonly now?: (() => number) | undefined;
}

export const USAGE = `kubectl purelb: reads a PureLB cluster; never writes.

Usage:
  kubectl purelb status                     the allocator's leader, each node's agent, each ServiceGroup, the problems
  kubectl purelb pools                      per group, pool and family: size, in use, free, the next address
  kubectl purelb services                   every LoadBalancer Service PureLB serves
  kubectl purelb election [--simulate-drain NODE]
                                            per local address: who should hold it, who announces it
  kubectl purelb validate -f FILE [-f FILE...]
                                            ServiceGroup and LBNodeAgent manifests, checked offline
  kubectl purelb migrate metallb [--subnet CIDR...] [--metallb-namespace NS] [--apply]
                                            MetalLB's pools and Services as ServiceGroups and annotations
                                            that keep every address; written only with --apply

Flags:
  -o, --output table|json|yaml   output format (default table)
  -n, --namespace NAME           PureLB's namespace (default purelb)
      --kubeconfig PATH          kubeconfig file (default: $KUBECONFIG, then ~/.kube/config)
      --context NAME             kubeconfig context (default: its current-context)
      --allocator-lease NAME     the allocator's leader Lease (default purelb-allocator)
      --request-timeout SECONDS  bound on each request to the API server (default 30)
      --subnet CIDR              migrate: a LAN subnet of the nodes (repeat for each)
      --metallb-namespace NAME   migrate: MetalLB's namespace (default metallb-system)
      --apply                    migrate: write what it prints
  -h, --help                     this text
      --version                  the plugin's version

Exit status: 0 nothing wrong, 1 problems found (listed), 2 bad command line,
3 the cluster or a file could not be read.
`;

interface Parsed {
  readonly command: Subcommand;
  readonly output: OutputFormat;
  readonly namespace: string;
  readonly kubeconfig: string | undefined;
  readonly context: string | undefined;
  readonly allocatorLease: string;
  readonly timeoutMs: number;
  readonly files: readonly string[];
  readonly drain: string | undefined;
  readonly subnets: readonly string[];
  readonly metallbNamespace: string;
  readonly apply: boolean;
}

/** Parses the command line; throws UsageError naming the flag or argument. Returns 'help'/'version' for those. */
export function parseCommandLine(argv: readonly string[]): Parsed | 'help' | 'version' {
  let v;
  try {
    v = parseArgs({
      args: [...argv],
      allowPositionals: true,
      strict: true,
      options: {
        output: { type: 'string', short: 'o' },
        namespace: { type: 'string', short: 'n' },
        kubeconfig: { type: 'string' },
        context: { type: 'string' },
        'allocator-lease': { type: 'string' },
        'request-timeout': { type: 'string' },
        filename: { type: 'string', short: 'f', multiple: true },
        'simulate-drain': { type: 'string' },
        subnet: { type: 'string', multiple: true },
        'metallb-namespace': { type: 'string' },
        apply: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean' },
      },
    });
  } catch (e) {
    throw new UsageError(e instanceof Error ? e.message : String(e));
  }
  const o = v.values;
  if (o.help) return 'help';
  if (o.version) return 'version';
  const [command, ...rest] = v.positionals;
  if (command === undefined) throw new UsageError(`a subcommand is required: ${SUBCOMMANDS.join(', ')}`);
  if (!(SUBCOMMANDS as readonly string[]).includes(command)) throw new UsageError(`unknown subcommand "${command}": use one of ${SUBCOMMANDS.join(', ')}`);
  if (command === 'migrate') {
    if (rest[0] !== 'metallb') throw new UsageError(`migrate: name what to migrate from: "migrate metallb"${rest[0] ? ` (not "${rest[0]}")` : ''}`);
    rest.shift();
  } else if (o.subnet || o['metallb-namespace'] !== undefined || o.apply) throw new UsageError(`${command}: --subnet, --metallb-namespace and --apply belong to migrate`);
  if (rest.length > 0) throw new UsageError(`${command}: unexpected argument "${rest[0]}"`);
  for (const s of o.subnet ?? []) if (!parseSubnet(s)) throw new UsageError(`--subnet: "${s}" is not a CIDR such as 192.0.2.0/24`);
  const output = o.output ?? 'table';
  if (!(OUTPUT_FORMATS as readonly string[]).includes(output)) throw new UsageError(`--output: "${output}" is not one of ${OUTPUT_FORMATS.join(', ')}`);
  const files = o.filename ?? [];
  if (command === 'validate' && files.length === 0) throw new UsageError('validate: name at least one manifest with -f FILE');
  if (command !== 'validate' && files.length > 0) throw new UsageError(`${command}: -f/--filename belongs to validate`);
  if (command !== 'election' && o['simulate-drain'] !== undefined) throw new UsageError(`${command}: --simulate-drain belongs to election`);
  if (o['simulate-drain'] === '') throw new UsageError('--simulate-drain: name a node');
  const timeout = o['request-timeout'] === undefined ? 30 : Number(o['request-timeout']);
  if (!Number.isFinite(timeout) || timeout <= 0) throw new UsageError(`--request-timeout: "${o['request-timeout']}" is not a positive number of seconds`);
  return {
    command: command as Subcommand,
    output: output as OutputFormat,
    namespace: o.namespace ?? 'purelb',
    kubeconfig: o.kubeconfig,
    context: o.context,
    allocatorLease: o['allocator-lease'] ?? 'purelb-allocator',
    timeoutMs: timeout * 1000,
    files,
    drain: o['simulate-drain'],
    subnets: o.subnet ?? [],
    metallbNamespace: o['metallb-namespace'] ?? 'metallb-system',
    apply: o.apply ?? false,
  };
}

/** Runs one command line; resolves with the exit status. Never throws. */
export async function run(argv: readonly string[], io: CliIo): Promise<ExitCode> {
  try {
    const p = parseCommandLine(argv);
    if (p === 'help') {
      io.stdout(USAGE);
      return ExitCode.ok;
    }
    if (p === 'version') {
      io.stdout(`kubectl-purelb ${VERSION}\n`);
      return ExitCode.ok;
    }
    const { data, text, problems } = p.command === 'validate' ? validateFiles(p.files, io) : await clusterCommand(p, io);
    io.stdout(p.output === 'table' ? text : formatData(data, p.output));
    return problems.length > 0 ? ExitCode.problems : ExitCode.ok;
  } catch (e) {
    if (e instanceof UsageError) {
      io.stderr(`error: ${e.message}\nRun "kubectl purelb --help" for usage.\n`);
      return ExitCode.usage;
    }
    if (e instanceof UnreadableError || e instanceof KubeConfigError || e instanceof KubeApiError) {
      io.stderr(`error: ${e.message}\n`);
      return ExitCode.unreadable;
    }
    io.stderr(`error: ${e instanceof Error ? e.message : String(e)}\n`);
    return ExitCode.unreadable;
  }
}

interface Outcome {
  readonly data: unknown;
  readonly text: string;
  readonly problems: readonly Problem[];
}

function validateFiles(files: readonly string[], io: CliIo): Outcome {
  const read = io.readFile ?? ((f: string) => readFileSync(f, 'utf8'));
  const objects: ValidationReport['objects'][number][] = [];
  const problems: Problem[] = [];
  for (const f of files) {
    let text: string;
    try {
      text = read(f);
    } catch (e) {
      throw new UnreadableError(`-f ${f}: ${e instanceof Error ? e.message : String(e)}`);
    }
    const r = validateManifests(f, text);
    objects.push(...r.objects);
    problems.push(...r.problems);
  }
  const report: ValidationReport = { objects, problems };
  return { data: report, text: renderValidation(report), problems };
}

async function clusterCommand(p: Parsed, io: CliIo): Promise<Outcome> {
  const config = loadKubeConfig({ kubeconfig: p.kubeconfig, context: p.context, env: io.env ?? process.env });
  const client = new KubeClient(config, { userAgent: `kubectl-purelb/${VERSION}`, timeoutMs: p.timeoutMs, maxSockets: 8 });
  if (p.command === 'migrate') {
    try {
      return await migrate(client, p);
    } finally {
      client.close();
    }
  }
  let snap: ClusterSnapshot;
  try {
    snap = await readSnapshot(client, { namespace: p.namespace, allocatorLease: p.allocatorLease, now: io.now });
  } finally {
    client.close();
  }
  switch (p.command) {
    case 'status': {
      const r = statusReport(snap);
      return { data: r, text: renderStatus(r), problems: r.problems };
    }
    case 'pools': {
      const r = poolsReport(snap);
      return { data: r, text: renderPools(r), problems: r.problems };
    }
    case 'services': {
      const r = servicesReport(snap);
      return { data: r, text: renderServices(r), problems: r.problems };
    }
    case 'election': {
      if (p.drain !== undefined && !snap.nodes.some((n) => n.metadata.name === p.drain) && !snap.leases.some((l) => l.spec?.holderIdentity === p.drain)) {
        throw new UsageError(`--simulate-drain: no Node and no agent named "${p.drain}"`);
      }
      const r = electionReport(snap, { drain: p.drain });
      return { data: r, text: renderElection(r), problems: r.problems };
    }
    default:
      throw new UsageError(`${p.command}: not a cluster command`);
  }
}

async function migrate(client: KubeClient, p: Parsed): Promise<Outcome> {
  const { metallb, services } = await readMetalLB(client, p.metallbNamespace);
  const plan = planMetalLBMigration({ metallb, services, namespace: p.namespace, subnets: p.subnets });
  if (!p.apply || plan.problems.length > 0) {
    const applied = p.apply ? { written: [], problems: [] } : undefined;
    return { data: { ...plan, ...(applied ? { applied: applied.written } : {}) }, text: renderMigration(plan, applied), problems: plan.problems };
  }
  const applied = await applyMigration(client, plan, services);
  const problems = [...plan.problems, ...applied.problems];
  return { data: { ...plan, problems, applied: applied.written }, text: renderMigration({ ...plan, problems }, applied), problems };
}
