/**
 * Counters and gauges in the Prometheus text format (version 0.0.4). Hot paths only bump numbers;
 * the text is built when /metrics is read.
 */
type Labels = Record<string, string>;

interface Family {
  help: string;
  type: "counter" | "gauge";
  /** One cell per label set, keyed by its serialised labels. */
  values: Map<string, { n: number; labels: Labels }>;
  read?: () => number;
}

/** A counter: bump it with a label set, or bind a label set once (`with`) and bump that. */
export interface Counter {
  (labels?: Labels, by?: number): void;
  /** The counter for one label set, resolved now: the cheapest bump on a hot path. */
  with(labels?: Labels): (by?: number) => void;
}

const labelKey = (labels: Labels = {}) =>
  Object.keys(labels)
    .sort()
    .map((k) => `${k}="${labels[k]!.replace(/["\\\n]/g, "_")}"`)
    .join(",");

export class Metrics {
  private families = new Map<string, Family>();

  counter(name: string, help: string): Counter {
    const f: Family = { help, type: "counter", values: new Map() };
    this.families.set(name, f);
    const cellOf = (labels?: Labels) => {
      const k = labelKey(labels);
      let cell = f.values.get(k);
      if (cell === undefined) f.values.set(k, (cell = { n: 0, labels: { ...labels } }));
      return cell;
    };
    // Label sets seen before are looked up by their values joined, not re-serialised.
    const cells = new Map<string, { n: number }>();
    const count = (labels?: Labels, by = 1) => {
      const raw = labels ? Object.values(labels).join("\u0000") : "";
      let cell = cells.get(raw);
      if (cell === undefined) cells.set(raw, (cell = cellOf(labels)));
      cell.n += by;
    };
    return Object.assign(count, {
      with(labels?: Labels) {
        const cell = cellOf(labels);
        return (by = 1) => void (cell.n += by);
      },
    });
  }

  /** A gauge read when scraped. */
  gauge(name: string, help: string, read: () => number) {
    this.families.set(name, { help, type: "gauge", values: new Map(), read });
  }

  /** A counter's cells now (each label set and its count); a gauge as one cell without labels; [] for an unknown name. */
  read(name: string): { labels: Labels; n: number }[] {
    const f = this.families.get(name);
    if (!f) return [];
    if (f.read) return [{ labels: {}, n: f.read() }];
    return [...f.values.values()].map(({ labels, n }) => ({ labels, n }));
  }

  text(): string {
    const out: string[] = [];
    for (const [name, f] of this.families) {
      out.push(`# HELP ${name} ${f.help}`, `# TYPE ${name} ${f.type}`);
      if (f.read) out.push(`${name} ${f.read()}`);
      else if (!f.values.size) out.push(`${name} 0`);
      else for (const [k, { n }] of f.values) out.push(k ? `${name}{${k}} ${n}` : `${name} ${n}`);
    }
    return out.join("\n") + "\n";
  }
}
