/**
 * The Kubernetes protobuf wire format, read only as far as pai needs it: kubectl 1.32 sends core
 * types (a Secret from `kubectl create secret`, DeleteOptions) as `application/vnd.kubernetes.protobuf`.
 *
 * A body is the magic `k8s\0` and a `runtime.Unknown` {typeMeta {apiVersion, kind}, raw,
 * contentEncoding, contentType}; `raw` is the object's message. Only v1 Secret (ObjectMeta's
 * name, generateName, namespace, uid, resourceVersion, labels, annotations; data, type,
 * stringData, immutable) and DeleteOptions (gracePeriodSeconds, preconditions, propagationPolicy,
 * dryRun) are decoded, into the JSON shape the API reads; other fields are skipped. The reader
 * never recurses into what it skips, so nesting is bounded by the fixed shape above; lengths are
 * checked against what is left, strings must be UTF-8, and anything malformed is a 400.
 */
import { BadRequestError, UnsupportedMediaTypeError } from "../../domain/errors";

export const PROTOBUF = "application/vnd.kubernetes.protobuf";
const MAGIC = [0x6b, 0x38, 0x73, 0x00];
/** Entries a map (labels, annotations, data) may hold. */
const MAX_MAP_ENTRIES = 4096;
/** Items a repeated string (dryRun) may hold. */
const MAX_LIST_ITEMS = 64;

const malformed = (why: string) => new BadRequestError(`request body is not a valid Kubernetes protobuf message: ${why}`);
const utf8 = new TextDecoder("utf-8", { fatal: true });

/** A cursor over one message's bytes. */
export class Reader {
  private pos: number;
  constructor(
    private readonly bytes: Uint8Array,
    start = 0,
    private readonly end = bytes.length,
  ) {
    this.pos = start;
  }

  get done() {
    return this.pos >= this.end;
  }

  /** A base-128 varint, at most 10 bytes; values beyond 2^53 are refused (none of ours is one). */
  varint(): number {
    let value = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw malformed("a number runs past the end");
      const b = this.bytes[this.pos++]!;
      value += (b & 0x7f) * scale;
      if (!(b & 0x80)) {
        if (value > Number.MAX_SAFE_INTEGER) throw malformed("a number is too large");
        return value;
      }
      scale *= 128;
    }
    throw malformed("a number is longer than 10 bytes");
  }

  /** The next field's number and wire type. */
  tag(): { field: number; wire: number } {
    const t = this.varint();
    const field = Math.floor(t / 8);
    if (field === 0) throw malformed("field number 0");
    return { field, wire: t % 8 };
  }

  /** A length-delimited field's bounds, checked against what is left. */
  private span(): [number, number] {
    const n = this.varint();
    if (n > this.end - this.pos) throw malformed("a field is longer than the message");
    const start = this.pos;
    this.pos += n;
    return [start, this.pos];
  }

  bytesField(): Uint8Array {
    const [s, e] = this.span();
    return this.bytes.subarray(s, e);
  }

  string(): string {
    try {
      return utf8.decode(this.bytesField());
    } catch (err) {
      if (err instanceof BadRequestError) throw err;
      throw malformed("a string is not UTF-8");
    }
  }

  message(): Reader {
    const [s, e] = this.span();
    return new Reader(this.bytes, s, e);
  }

  skip(wire: number) {
    switch (wire) {
      case 0:
        this.varint();
        return;
      case 1:
        this.advance(8);
        return;
      case 2:
        this.span();
        return;
      case 5:
        this.advance(4);
        return;
      default:
        // Groups (3, 4) are not used by Kubernetes; 6 and 7 do not exist.
        throw malformed(`wire type ${wire} is not supported`);
    }
  }

  private advance(n: number) {
    if (n > this.end - this.pos) throw malformed("a field runs past the end");
    this.pos += n;
  }
}

function expectWire(got: number, want: number, what: string) {
  if (got !== want) throw malformed(`${what} has wire type ${got}, expected ${want}`);
}

/** A `map<string, V>` entry: key = 1, value = 2. */
function mapEntry<V>(r: Reader, value: (r: Reader) => V, empty: V): [string, V] {
  let key = "";
  let v = empty;
  while (!r.done) {
    const { field, wire } = r.tag();
    if (field === 1) {
      expectWire(wire, 2, "a map key");
      key = r.string();
    } else if (field === 2) {
      expectWire(wire, 2, "a map value");
      v = value(r);
    } else r.skip(wire);
  }
  return [key, v];
}

function addEntry<V>(map: Record<string, V>, [k, v]: [string, V]) {
  if (Object.keys(map).length >= MAX_MAP_ENTRIES) throw malformed(`a map has more than ${MAX_MAP_ENTRIES} entries`);
  Object.defineProperty(map, k, { value: v, writable: true, enumerable: true, configurable: true });
}

export interface DecodedMeta {
  name?: string;
  generateName?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

function objectMeta(r: Reader): DecodedMeta {
  const m: DecodedMeta = {};
  const strings: Record<number, keyof DecodedMeta> = { 1: "name", 2: "generateName", 3: "namespace", 5: "uid", 6: "resourceVersion" };
  while (!r.done) {
    const { field, wire } = r.tag();
    const key = strings[field];
    if (key) {
      expectWire(wire, 2, `metadata.${key}`);
      const v = r.string();
      // Unset and empty are the same on the wire; the JSON form leaves empty ones out.
      if (v) (m as Record<string, string>)[key] = v;
    } else if (field === 11 || field === 12) {
      expectWire(wire, 2, field === 11 ? "metadata.labels" : "metadata.annotations");
      const map = ((field === 11 ? (m.labels ??= {}) : (m.annotations ??= {})) as Record<string, string>);
      addEntry(map, mapEntry(r.message(), (e) => e.string(), ""));
    } else r.skip(wire);
  }
  return m;
}

/** v1.Secret → its JSON form (data values base64, as JSON carries them). */
function secret(r: Reader) {
  let metadata: DecodedMeta = {};
  let data: Record<string, string> | undefined;
  let stringData: Record<string, string> | undefined;
  let type: string | undefined;
  let immutable: boolean | undefined;
  while (!r.done) {
    const { field, wire } = r.tag();
    switch (field) {
      case 1:
        expectWire(wire, 2, "metadata");
        metadata = objectMeta(r.message());
        break;
      case 2:
        expectWire(wire, 2, "data");
        addEntry((data ??= {}), mapEntry(r.message(), (e) => Buffer.from(e.bytesField()).toString("base64"), ""));
        break;
      case 3:
        expectWire(wire, 2, "type");
        type = r.string() || undefined;
        break;
      case 4:
        expectWire(wire, 2, "stringData");
        addEntry((stringData ??= {}), mapEntry(r.message(), (e) => e.string(), ""));
        break;
      case 5:
        expectWire(wire, 0, "immutable");
        immutable = r.varint() !== 0;
        break;
      default:
        r.skip(wire);
    }
  }
  return {
    apiVersion: "v1",
    kind: "Secret",
    metadata,
    ...(data ? { data } : {}),
    ...(stringData ? { stringData } : {}),
    ...(type ? { type } : {}),
    ...(immutable !== undefined ? { immutable } : {}),
  };
}

function deleteOptions(r: Reader) {
  const out: { kind: "DeleteOptions"; apiVersion: string; gracePeriodSeconds?: number; preconditions?: { uid?: string; resourceVersion?: string }; propagationPolicy?: string; dryRun?: string[] } = {
    kind: "DeleteOptions",
    apiVersion: "v1",
  };
  while (!r.done) {
    const { field, wire } = r.tag();
    switch (field) {
      case 1:
        expectWire(wire, 0, "gracePeriodSeconds");
        out.gracePeriodSeconds = r.varint();
        break;
      case 2: {
        expectWire(wire, 2, "preconditions");
        const p = r.message();
        const pre: { uid?: string; resourceVersion?: string } = {};
        while (!p.done) {
          const t = p.tag();
          if (t.field === 1 || t.field === 2) {
            expectWire(t.wire, 2, t.field === 1 ? "preconditions.uid" : "preconditions.resourceVersion");
            const v = p.string();
            if (v) pre[t.field === 1 ? "uid" : "resourceVersion"] = v;
          } else p.skip(t.wire);
        }
        out.preconditions = pre;
        break;
      }
      case 4:
        expectWire(wire, 2, "propagationPolicy");
        out.propagationPolicy = r.string();
        break;
      case 5:
        expectWire(wire, 2, "dryRun");
        if ((out.dryRun ??= []).length >= MAX_LIST_ITEMS) throw malformed(`dryRun has more than ${MAX_LIST_ITEMS} items`);
        out.dryRun.push(r.string());
        break;
      default:
        r.skip(wire);
    }
  }
  return out;
}

/** Decodes a `k8s\0` body into the JSON form of the Secret or DeleteOptions it holds. */
export function decodeProtobuf(bytes: Uint8Array): ReturnType<typeof secret> | ReturnType<typeof deleteOptions> {
  if (bytes.length < MAGIC.length || MAGIC.some((b, i) => bytes[i] !== b)) throw malformed("it does not start with the k8s\\0 prefix");
  const r = new Reader(bytes, MAGIC.length);
  let apiVersion = "";
  let kind = "";
  let raw: Uint8Array | undefined;
  let encoding = "";
  while (!r.done) {
    const { field, wire } = r.tag();
    if (field === 1) {
      expectWire(wire, 2, "typeMeta");
      const t = r.message();
      while (!t.done) {
        const f = t.tag();
        if (f.field === 1 || f.field === 2) {
          expectWire(f.wire, 2, f.field === 1 ? "apiVersion" : "kind");
          if (f.field === 1) apiVersion = t.string();
          else kind = t.string();
        } else t.skip(f.wire);
      }
    } else if (field === 2) {
      expectWire(wire, 2, "raw");
      raw = r.bytesField();
    } else if (field === 3) {
      expectWire(wire, 2, "contentEncoding");
      encoding = r.string();
    } else r.skip(wire);
  }
  if (encoding) throw malformed(`contentEncoding "${encoding.slice(0, 40)}" is not supported`);
  const body = new Reader(raw ?? new Uint8Array(0));
  if (kind === "Secret" && apiVersion === "v1") return secret(body);
  if (kind === "DeleteOptions" && (apiVersion === "v1" || apiVersion === "meta.k8s.io/v1")) return deleteOptions(body);
  throw new UnsupportedMediaTypeError(
    `protobuf bodies are read for v1 Secret and DeleteOptions only (got ${JSON.stringify(`${apiVersion}/${kind}`).slice(0, 80)}): send this one as application/json`,
  );
}
