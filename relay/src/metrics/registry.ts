/*
 * A small Prometheus registry: counters, gauges and histograms with labels, written in the
 * text exposition format 0.0.4 (what `promtool check metrics` reads). Enough for the relay's
 * own metrics without a dependency.
 */

type Labels = Record<string, string>;

function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function labelText(labels: Labels): string {
  const entries = Object.entries(labels);
  return entries.length === 0 ? '' : `{${entries.map(([name, value]) => `${name}="${escapeLabel(value)}"`).join(',')}}`;
}

function formatNumber(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return '+Inf';
  if (value === -Infinity) return '-Inf';
  return String(value);
}

interface Metric {
  name: string;
  help: string;
  type: 'counter' | 'gauge' | 'histogram';
  render(): string[];
}

export class Counter {
  private readonly values = new Map<string, { labels: Labels; value: number }>();

  constructor(
    readonly name: string,
    readonly help: string,
  ) {}

  inc(labels: Labels = {}, by = 1): void {
    const key = labelText(labels);
    const entry = this.values.get(key);
    if (entry) entry.value += by;
    else this.values.set(key, { labels, value: by });
  }

  render(): string[] {
    return [...this.values.values()].map(({ labels, value }) => `${this.name}${labelText(labels)} ${formatNumber(value)}`);
  }
}

/** A gauge whose values are read when scraped. */
export class Gauge {
  constructor(
    readonly name: string,
    readonly help: string,
    private readonly collect: () => Array<{ labels?: Labels; value: number }>,
  ) {}

  render(): string[] {
    return this.collect().map(({ labels = {}, value }) => `${this.name}${labelText(labels)} ${formatNumber(value)}`);
  }
}

export class Histogram {
  private readonly series = new Map<string, { labels: Labels; counts: number[]; sum: number; count: number }>();

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly buckets: readonly number[],
  ) {}

  observe(labels: Labels, value: number): void {
    const key = labelText(labels);
    let entry = this.series.get(key);
    if (!entry) {
      entry = { labels, counts: this.buckets.map(() => 0), sum: 0, count: 0 };
      this.series.set(key, entry);
    }
    for (const [index, bound] of this.buckets.entries()) if (value <= bound) entry.counts[index]!++;
    entry.sum += value;
    entry.count++;
  }

  render(): string[] {
    const lines: string[] = [];
    for (const { labels, counts, sum, count } of this.series.values()) {
      for (const [index, bound] of this.buckets.entries()) lines.push(`${this.name}_bucket${labelText({ ...labels, le: formatNumber(bound) })} ${counts[index]}`);
      lines.push(`${this.name}_bucket${labelText({ ...labels, le: '+Inf' })} ${count}`);
      lines.push(`${this.name}_sum${labelText(labels)} ${formatNumber(sum)}`);
      lines.push(`${this.name}_count${labelText(labels)} ${count}`);
    }
    return lines;
  }
}

export class MetricsRegistry {
  private readonly metrics: Metric[] = [];

  private add<T extends Counter | Gauge | Histogram>(metric: T, type: Metric['type']): T {
    this.metrics.push({ name: metric.name, help: metric.help, type, render: () => metric.render() });
    return metric;
  }

  counter(name: string, help: string): Counter {
    return this.add(new Counter(name, help), 'counter');
  }

  gauge(name: string, help: string, collect: () => Array<{ labels?: Labels; value: number }>): Gauge {
    return this.add(new Gauge(name, help, collect), 'gauge');
  }

  /** A counter whose values are read when scraped (they must only grow). */
  collectedCounter(name: string, help: string, collect: () => Array<{ labels?: Labels; value: number }>): Gauge {
    return this.add(new Gauge(name, help, collect), 'counter');
  }

  histogram(name: string, help: string, buckets: readonly number[]): Histogram {
    return this.add(new Histogram(name, help, buckets), 'histogram');
  }

  /**
   * The text exposition format: HELP and TYPE for every metric, then its samples. With `vmAllowed`,
   * samples labelled with another VM (`vm="…"`) are left out (a token limited to some VMs).
   */
  render(vmAllowed?: (vm: string) => boolean): string {
    const keep = (sample: string): boolean => {
      const vm = vmAllowed && /[{,]vm="([^"]*)"/.exec(sample)?.[1];
      return !vm || vmAllowed!(vm);
    };
    return this.metrics.map((metric) => [`# HELP ${metric.name} ${metric.help}`, `# TYPE ${metric.name} ${metric.type}`, ...metric.render().filter(keep)].join('\n')).join('\n') + '\n';
  }
}
