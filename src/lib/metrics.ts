/**
 * Counters and gauges in the Prometheus text format (version 0.0.4). Hot paths only bump numbers;
 * the text is built when /metrics is read.
 */
type Labels = Record<string, string>;

interface Family {
  help: string;
  type: "counter" | "gauge";
  values: Map<string, number>;
  read?: () => number;
}

const labelKey = (labels: Labels = {}) =>
  Object.keys(labels)
    .sort()
    .map((k) => `${k}="${labels[k]!.replace(/["\\\n]/g, "_")}"`)
    .join(",");

export class Metrics {
  private families = new Map<string, Family>();

  counter(name: string, help: string) {
    const f: Family = { help, type: "counter", values: new Map() };
    this.families.set(name, f);
    // Label sets seen before are looked up by their values joined, not re-serialised.
    const keys = new Map<string, string>();
    return (labels?: Labels, by = 1) => {
      const raw = labels ? Object.values(labels).join("\u0000") : "";
      let k = keys.get(raw);
      if (k === undefined) keys.set(raw, (k = labelKey(labels)));
      f.values.set(k, (f.values.get(k) ?? 0) + by);
    };
  }

  /** A gauge read when scraped. */
  gauge(name: string, help: string, read: () => number) {
    this.families.set(name, { help, type: "gauge", values: new Map(), read });
  }

  text(): string {
    const out: string[] = [];
    for (const [name, f] of this.families) {
      out.push(`# HELP ${name} ${f.help}`, `# TYPE ${name} ${f.type}`);
      if (f.read) out.push(`${name} ${f.read()}`);
      else if (!f.values.size) out.push(`${name} 0`);
      else for (const [k, v] of f.values) out.push(k ? `${name}{${k}} ${v}` : `${name} ${v}`);
    }
    return out.join("\n") + "\n";
  }
}
