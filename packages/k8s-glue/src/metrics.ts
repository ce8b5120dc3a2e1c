// Counters, gauges and histograms written in the Prometheus text exposition format
// (version 0.0.4). The daemons need only these three types, so a few hundred lines
// replace a metrics library whose import alone costs megabytes of resident memory.

/**
 * Every way a metric call can fail, as a stable code. Callers branch on `code`, never on
 * the message. Append new codes; never rename or reuse one.
 */
export const MetricsErrorCode = {
  /** A metric name does not match `[a-zA-Z_:][a-zA-Z0-9_:]*`. */
  InvalidName: 'METRICS_INVALID_NAME',
  /** A label name does not match `[a-zA-Z_][a-zA-Z0-9_]*`, starts with `__` (reserved) or is listed twice. */
  InvalidLabelName: 'METRICS_INVALID_LABEL_NAME',
  /** A registry already holds a metric of that name. */
  DuplicateMetric: 'METRICS_DUPLICATE_METRIC',
  /** The labels given are not exactly the metric's label names (one missing or one unknown). */
  LabelsMismatch: 'METRICS_LABELS_MISMATCH',
  /** A value is not a number, or a counter was given NaN. */
  InvalidValue: 'METRICS_INVALID_VALUE',
  /** A counter was asked to go down. */
  NegativeIncrement: 'METRICS_NEGATIVE_INCREMENT',
  /** A metric's `collect` hook threw (the cause is attached). */
  CollectFailed: 'METRICS_COLLECT_FAILED',
} as const;

export type MetricsErrorCode = (typeof MetricsErrorCode)[keyof typeof MetricsErrorCode];

/** A misuse of a metric or registry. The message names the metric. */
export class MetricsError extends Error {
  override readonly name = 'MetricsError';
  readonly code: MetricsErrorCode;
  /** The metric's name (as given, even when the name itself is what is wrong). */
  readonly metric: string;

  constructor(code: MetricsErrorCode, metric: string, message: string, cause?: unknown) {
    super(`metric ${JSON.stringify(metric)}: ${message}`, cause === undefined ? undefined : { cause });
    this.code = code;
    this.metric = metric;
  }
}

/** Label values of one series, keyed by label name. Numbers are written as `String(n)`. */
export type LabelValues<L extends string> = Readonly<Record<L, string | number>>;

/** Options of `new Counter(...)` and `new Gauge(...)`. */
export interface MetricOptions<L extends string, M> {
  /** The metric name, e.g. `purelb_allocations_total`; checked at construction. */
  readonly name: string;
  /** The `# HELP` text. */
  readonly help: string;
  /** Label names, in the order they are written on every series (default: none). */
  readonly labelNames?: readonly L[] | undefined;
  /** Registers the metric there at construction (same as `registry.register(metric)`). */
  readonly registry?: MetricsRegistry | undefined;
  /**
   * Runs before each exposition of the registry, with `this` (and the argument) the metric:
   * the place to copy a value kept elsewhere, e.g. `this.reset(); this.inc(n)`.
   */
  readonly collect?: ((this: M, metric: M) => void) | undefined;
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

interface Series {
  readonly values: readonly string[];
  value: number;
}

/** What Counter and Gauge share: name, help, label names, series, and the text they write. */
export abstract class Metric<L extends string = never> {
  /** `counter`, `gauge` or `histogram`, as written on the `# TYPE` line. */
  abstract readonly type: 'counter' | 'gauge' | 'histogram';
  readonly name: string;
  readonly help: string;
  readonly labelNames: readonly L[];
  // Typed loosely so that a Metric<'a'> still is a Metric<string> to the registry.
  readonly #collect: ((this: unknown, metric: unknown) => void) | undefined;
  // Keyed by the JSON of the label values in labelNames order: unambiguous for any value.
  readonly #series = new Map<string, Series>();

  constructor(opts: MetricOptions<L, never>) {
    this.name = opts.name;
    this.help = opts.help;
    this.labelNames = Object.freeze([...(opts.labelNames ?? [])]);
    if (typeof opts.name !== 'string' || !METRIC_NAME.test(opts.name)) {
      throw new MetricsError(MetricsErrorCode.InvalidName, String(opts.name), 'the name must match [a-zA-Z_:][a-zA-Z0-9_:]*');
    }
    const seen = new Set<string>();
    for (const l of this.labelNames) {
      if (typeof l !== 'string' || !LABEL_NAME.test(l)) throw new MetricsError(MetricsErrorCode.InvalidLabelName, opts.name, `label name ${JSON.stringify(l)} must match [a-zA-Z_][a-zA-Z0-9_]*`);
      if (l.startsWith('__')) throw new MetricsError(MetricsErrorCode.InvalidLabelName, opts.name, `label name "${l}" starts with __, which Prometheus reserves`);
      if (seen.has(l)) throw new MetricsError(MetricsErrorCode.InvalidLabelName, opts.name, `label name "${l}" is listed twice`);
      seen.add(l);
    }
    this.#collect = opts.collect as ((this: unknown, metric: unknown) => void) | undefined;
    this.reset();
    opts.registry?.register(this);
  }

  /** Forgets every series; a metric without labels goes back to 0 (so it is still written). */
  reset(): void {
    this.#series.clear();
    if (this.labelNames.length === 0) this.#series.set('', { values: [], value: 0 });
  }

  /** The value of one series, or undefined if it has none. */
  get(labels?: LabelValues<L>): number | undefined {
    return this.#series.get(this.#key(labels)[0])?.value;
  }

  /** Runs the `collect` hook, if any. The registry calls it before each exposition. */
  collect(): void {
    if (!this.#collect) return;
    try {
      this.#collect.call(this, this);
    } catch (e) {
      throw new MetricsError(MetricsErrorCode.CollectFailed, this.name, `collect hook failed: ${e instanceof Error ? e.message : String(e)}`, e);
    }
  }

  /** This metric in the text format: HELP, TYPE, then one line per series sorted by label values; ends with a newline. */
  exposition(): string {
    let out = `# HELP ${this.name} ${escapeHelp(this.help)}\n# TYPE ${this.name} ${this.type}\n`;
    const keys = [...this.#series.keys()].sort();
    for (const k of keys) {
      const s = this.#series.get(k)!;
      out += this.name;
      if (s.values.length > 0) out += `{${s.values.map((v, i) => `${this.labelNames[i]}="${escapeLabelValue(v)}"`).join(',')}}`;
      out += ` ${formatValue(s.value)}\n`;
    }
    return out;
  }

  /** Adds `delta` to a series, creating it at 0. */
  protected add(labels: LabelValues<L> | undefined, delta: number): void {
    const s = this.#seriesFor(labels);
    s.value += delta;
  }

  /** Sets a series to `value`, creating it. */
  protected put(labels: LabelValues<L> | undefined, value: number): void {
    this.#seriesFor(labels).value = value;
  }

  /** Throws unless `value` is a number. */
  protected checkNumber(value: unknown): asserts value is number {
    if (typeof value !== 'number') throw new MetricsError(MetricsErrorCode.InvalidValue, this.name, `value ${String(value)} is not a number`);
  }

  /** The (labels?, value?) arguments of inc/dec/set, as labels and a checked number. */
  protected args(labelsOrValue: LabelValues<L> | number | undefined, value: number | undefined, fallback: number | undefined): [LabelValues<L> | undefined, number] {
    const labels = typeof labelsOrValue === 'object' ? labelsOrValue : undefined;
    const v: unknown = typeof labelsOrValue === 'object' ? (value ?? fallback) : (labelsOrValue ?? fallback);
    this.checkNumber(v);
    return [labels, v];
  }

  /** The series key and label values of `labels`; throws MetricsError `METRICS_LABELS_MISMATCH` unless they are exactly the label names. */
  protected labelKey(labels: LabelValues<L> | undefined): [string, string[]] {
    return this.#key(labels);
  }

  #seriesFor(labels: LabelValues<L> | undefined): Series {
    const [key, values] = this.#key(labels);
    let s = this.#series.get(key);
    if (!s) {
      s = { values, value: 0 };
      this.#series.set(key, s);
    }
    return s;
  }

  #key(labels: LabelValues<L> | undefined): [string, string[]] {
    const given = labels ? Object.keys(labels) : [];
    for (const g of given) {
      if (!(this.labelNames as readonly string[]).includes(g)) throw new MetricsError(MetricsErrorCode.LabelsMismatch, this.name, `unknown label "${g}" (labels: ${this.labelNames.join(', ') || 'none'})`);
    }
    if (this.labelNames.length === 0) return ['', []];
    const values = this.labelNames.map((l) => {
      const v = labels?.[l];
      if (v === undefined) throw new MetricsError(MetricsErrorCode.LabelsMismatch, this.name, `label "${l}" is missing`);
      return String(v);
    });
    return [JSON.stringify(values), values];
  }
}

/** A value that only goes up (until `reset()`), e.g. `purelb_allocations_total`. */
export class Counter<L extends string = never> extends Metric<L> {
  readonly type = 'counter';

  constructor(opts: MetricOptions<L, Counter<L>>) {
    super(opts);
  }

  /** Adds `value` (default 1) to the series; throws MetricsError `METRICS_NEGATIVE_INCREMENT` for a negative value. */
  inc(value?: number): void;
  inc(labels: LabelValues<L>, value?: number): void;
  inc(labelsOrValue?: LabelValues<L> | number, value?: number): void {
    const [labels, v] = this.args(labelsOrValue, value, 1);
    if (Number.isNaN(v)) throw new MetricsError(MetricsErrorCode.InvalidValue, this.name, 'a counter cannot be incremented by NaN');
    if (v < 0) throw new MetricsError(MetricsErrorCode.NegativeIncrement, this.name, `a counter only goes up; increment ${v} is negative`);
    this.add(labels, v);
  }
}

/** A value that goes up and down, e.g. `purelb_address_pool_size`. */
export class Gauge<L extends string = never> extends Metric<L> {
  readonly type = 'gauge';

  constructor(opts: MetricOptions<L, Gauge<L>>) {
    super(opts);
  }

  /** Sets the series to `value`. */
  set(value: number): void;
  set(labels: LabelValues<L>, value: number): void;
  set(labelsOrValue: LabelValues<L> | number, value?: number): void {
    const [labels, v] = this.args(labelsOrValue, value, undefined);
    this.put(labels, v);
  }

  /** Adds `value` (default 1) to the series. */
  inc(value?: number): void;
  inc(labels: LabelValues<L>, value?: number): void;
  inc(labelsOrValue?: LabelValues<L> | number, value?: number): void {
    const [labels, v] = this.args(labelsOrValue, value, 1);
    this.add(labels, v);
  }

  /** Subtracts `value` (default 1) from the series. */
  dec(value?: number): void;
  dec(labels: LabelValues<L>, value?: number): void;
  dec(labelsOrValue?: LabelValues<L> | number, value?: number): void {
    const [labels, v] = this.args(labelsOrValue, value, 1);
    this.add(labels, -v);
  }
}

interface HistogramSeries {
  readonly values: readonly string[];
  readonly counts: number[];
  sum: number;
  count: number;
}

/**
 * A distribution, e.g. `purelb_event_loop_lag_seconds`: per series, cumulative
 * `_bucket{...,le="..."}` counts for the given upper bounds plus `+Inf`, `_sum` and
 * `_count`, as prom-client writes them. With label names, each combination of label values
 * observed is one series (`le` is reserved for the buckets).
 */
export class Histogram<L extends string = never> extends Metric<L> {
  readonly type = 'histogram';
  readonly buckets: readonly number[];
  readonly #hs = new Map<string, HistogramSeries>();

  constructor(opts: MetricOptions<L, Histogram<L>> & { readonly buckets: readonly number[] }) {
    super(opts);
    if ((this.labelNames as readonly string[]).includes('le')) throw new MetricsError(MetricsErrorCode.InvalidLabelName, opts.name, 'label name "le" is reserved for the buckets of a histogram');
    const b = [...opts.buckets];
    if (b.length === 0 || b.some((x, i) => !Number.isFinite(x) || (i > 0 && x <= b[i - 1]!))) {
      throw new MetricsError(MetricsErrorCode.InvalidValue, opts.name, 'buckets must be finite and strictly increasing');
    }
    this.buckets = Object.freeze(b);
    if (this.labelNames.length === 0) this.#hs.set('', { values: [], counts: b.map(() => 0), sum: 0, count: 0 });
  }

  /** Records one observation (in the series of `labels`, for a histogram with label names). */
  observe(value: number): void;
  observe(labels: LabelValues<L>, value: number): void;
  observe(labelsOrValue: LabelValues<L> | number, value?: number): void {
    const [labels, v] = this.args(labelsOrValue, value, undefined);
    if (Number.isNaN(v)) throw new MetricsError(MetricsErrorCode.InvalidValue, this.name, 'cannot observe NaN');
    const [key, values] = this.labelKey(labels);
    let s = this.#hs.get(key);
    if (!s) {
      s = { values, counts: this.buckets.map(() => 0), sum: 0, count: 0 };
      this.#hs.set(key, s);
    }
    for (let i = 0; i < this.buckets.length; i++) if (v <= this.buckets[i]!) s.counts[i]!++;
    s.sum += v;
    s.count++;
  }

  /** Observations so far, and their sum, over all series. */
  get count(): number {
    let n = 0;
    for (const s of this.#hs.values()) n += s.count;
    return n;
  }

  get sum(): number {
    let n = 0;
    for (const s of this.#hs.values()) n += s.sum;
    return n;
  }

  /** The smallest bucket bound holding at least `q` (0-1) of the observations of all series (Infinity past the last). */
  quantileBound(q: number): number {
    const want = q * this.count;
    for (let i = 0; i < this.buckets.length; i++) {
      let n = 0;
      for (const s of this.#hs.values()) n += s.counts[i]!;
      if (n >= want) return this.buckets[i]!;
    }
    return Infinity;
  }

  override exposition(): string {
    let out = `# HELP ${this.name} ${escapeHelp(this.help)}\n# TYPE ${this.name} histogram\n`;
    for (const k of [...this.#hs.keys()].sort()) {
      const s = this.#hs.get(k)!;
      const labels = s.values.map((v, i) => `${this.labelNames[i]}="${escapeLabelValue(v)}"`);
      const braces = (extra: string[]): string => (labels.length + extra.length > 0 ? `{${[...labels, ...extra].join(',')}}` : '');
      this.buckets.forEach((b, i) => (out += `${this.name}_bucket${braces([`le="${formatValue(b)}"`])} ${s.counts[i]}\n`));
      out += `${this.name}_bucket${braces(['le="+Inf"'])} ${s.count}\n${this.name}_sum${braces([])} ${formatValue(s.sum)}\n${this.name}_count${braces([])} ${s.count}\n`;
    }
    return out;
  }
}

/** The metrics one `/metrics` endpoint serves, written in registration order. */
export class MetricsRegistry {
  /** The Content-Type of `metrics()`: the Prometheus text format, version 0.0.4. */
  readonly contentType = 'text/plain; version=0.0.4; charset=utf-8';
  readonly #metrics = new Map<string, Metric<string>>();

  /** Adds a metric; throws MetricsError `METRICS_DUPLICATE_METRIC` if one of that name is already here. */
  register(metric: Metric<string>): void {
    if (this.#metrics.has(metric.name)) throw new MetricsError(MetricsErrorCode.DuplicateMetric, metric.name, 'a metric of that name is already registered');
    this.#metrics.set(metric.name, metric);
  }

  /** The metric registered under `name`, if any. */
  get(name: string): Metric<string> | undefined {
    return this.#metrics.get(name);
  }

  /**
   * Every metric in the text format. All `collect` hooks run first (in registration
   * order), then all metrics are written, so a hook may set several metrics at once and
   * the page shows one consistent moment. A throwing hook throws MetricsError
   * `METRICS_COLLECT_FAILED` naming its metric.
   */
  metrics(): string {
    for (const m of this.#metrics.values()) m.collect();
    let out = '';
    for (const m of this.#metrics.values()) out += m.exposition();
    return out;
  }
}

function escapeHelp(text: string): string {
  return text.replace(/[\\\n]/g, (c) => (c === '\n' ? '\\n' : '\\\\'));
}

function escapeLabelValue(text: string): string {
  return text.replace(/[\\"\n]/g, (c) => (c === '\n' ? '\\n' : `\\${c}`));
}

function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}
