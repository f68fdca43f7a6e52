/**
 * The Kubernetes protobuf reader: bodies captured from the real kubectl 1.32 (`kubectl create
 * secret generic`), hand-built bodies for every field read, and malformed bytes, each a 400 (or
 * 415 for a kind it does not read), never a crash.
 */
import { describe, expect, test } from "bun:test";
import { BadRequestError, UnsupportedMediaTypeError } from "../../src/domain/errors";
import { decodeProtobuf } from "../../src/api/kube/protobuf";

// kubectl create secret generic s --from-literal=k=v --from-literal=bin=$'a\x01b' (kubectl v1.32.4).
const CAPTURED_GENERIC =
  "6b3873000a0c0a027631120653656372657412290a110a017312001a0022002a00320038004200120a0a0362696e120361016212060a016b1201761a001a002200";
// kubectl create secret generic s3 --type=kubernetes.io/basic-auth --from-literal=username=a --from-literal=password=b --append-hash
const CAPTURED_TYPED =
  "6b3873000a0c0a027631120653656372657412570a1d0a0d73332d68376d34676b34746b3512001a0022002a00320038004200120d0a0870617373776f7264120162120d0a08757365726e616d651201611a186b756265726e657465732e696f2f62617369632d617574681a002200";

// A small protobuf writer for the hand-built cases.
const varint = (n: number): number[] => {
  const out: number[] = [];
  while (n > 127) {
    out.push((n % 128) | 128);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return out;
};
const bytes = (field: number, data: number[] | string) => {
  const b = typeof data === "string" ? [...new TextEncoder().encode(data)] : data;
  return [...varint(field * 8 + 2), ...varint(b.length), ...b];
};
const num = (field: number, n: number) => [...varint(field * 8), ...varint(n)];
const entry = (field: number, k: string, v: string | number[]) => bytes(field, [...bytes(1, k), ...bytes(2, v)]);
const envelope = (apiVersion: string, kind: string, raw: number[], extra: number[] = []) =>
  new Uint8Array([0x6b, 0x38, 0x73, 0x00, ...bytes(1, [...bytes(1, apiVersion), ...bytes(2, kind)]), ...bytes(2, raw), ...extra]);
const hex = (h: string) => new Uint8Array(Buffer.from(h, "hex"));

describe("bodies kubectl sends", () => {
  test("kubectl create secret generic: name and data (binary values stay exact, as base64)", () => {
    expect(decodeProtobuf(hex(CAPTURED_GENERIC))).toEqual({
      apiVersion: "v1",
      kind: "Secret",
      metadata: { name: "s" },
      data: { bin: Buffer.from("a\x01b").toString("base64"), k: Buffer.from("v").toString("base64") },
    });
  });

  test("with --type: the type", () => {
    expect(decodeProtobuf(hex(CAPTURED_TYPED))).toEqual({
      apiVersion: "v1",
      kind: "Secret",
      metadata: { name: "s3-h7m4gk4tk5" },
      data: { password: "Yg==", username: "YQ==" },
      type: "kubernetes.io/basic-auth",
    });
  });
});

describe("hand-built bodies", () => {
  test("a Secret with every field read, and fields it skips", () => {
    const meta = [
      ...bytes(1, "web"),
      ...bytes(3, "team"),
      ...bytes(5, "uid-1"),
      ...bytes(6, "42"),
      ...num(7, 3), // generation: skipped
      ...bytes(8, [...num(1, 1700000000)]), // creationTimestamp: skipped
      ...entry(11, "app", "web"),
      ...entry(11, "tier", "gold"),
      ...entry(12, "note", "hi"),
      ...bytes(14, "finalizer"), // skipped
    ];
    const raw = [...bytes(1, meta), ...entry(2, "token", [0, 255, 1]), ...bytes(3, "Opaque"), ...entry(4, "plain", "text"), ...num(5, 1), ...[0x35, 1, 2, 3, 4], ...[0x31, 1, 2, 3, 4, 5, 6, 7, 8]];
    expect(decodeProtobuf(envelope("v1", "Secret", raw, bytes(4, "application/vnd.kubernetes.protobuf")))).toEqual({
      apiVersion: "v1",
      kind: "Secret",
      metadata: { name: "web", namespace: "team", uid: "uid-1", resourceVersion: "42", labels: { app: "web", tier: "gold" }, annotations: { note: "hi" } },
      data: { token: Buffer.from([0, 255, 1]).toString("base64") },
      stringData: { plain: "text" },
      type: "Opaque",
      immutable: true,
    });
  });

  test("DeleteOptions: grace period, preconditions, propagation, dryRun", () => {
    const raw = [...num(1, 30), ...bytes(2, [...bytes(1, "uid-1"), ...bytes(2, "7")]), ...num(3, 0), ...bytes(4, "Foreground"), ...bytes(5, "All")];
    expect(decodeProtobuf(envelope("meta.k8s.io/v1", "DeleteOptions", raw))).toEqual({
      kind: "DeleteOptions",
      apiVersion: "v1",
      gracePeriodSeconds: 30,
      preconditions: { uid: "uid-1", resourceVersion: "7" },
      propagationPolicy: "Foreground",
      dryRun: ["All"],
    });
  });

  test("a map key __proto__ is an own key, not the prototype", () => {
    const out = decodeProtobuf(envelope("v1", "Secret", [...bytes(1, bytes(1, "s")), ...entry(4, "__proto__", "x")])) as { stringData: Record<string, string> };
    expect(Object.getPrototypeOf(out.stringData)).toBe(Object.prototype);
    expect(Object.keys(out.stringData)).toEqual(["__proto__"]);
  });
});

describe("malformed bytes are a 400 (another kind a 415), never a crash", () => {
  const secretRaw = [...bytes(1, bytes(1, "s"))];
  test.each([
    ["empty", new Uint8Array(0), "k8s\\0 prefix"],
    ["JSON sent as protobuf", new TextEncoder().encode('{"kind":"Secret"}'), "k8s\\0 prefix"],
    ["a length past the end", new Uint8Array([0x6b, 0x38, 0x73, 0x00, 0x0a, 0x50, 0x01]), "longer than the message"],
    ["a truncated number", new Uint8Array([0x6b, 0x38, 0x73, 0x00, 0x48, 0x80]), "runs past the end"],
    ["a number of 11 bytes", new Uint8Array([0x6b, 0x38, 0x73, 0x00, 0x48, ...Array(10).fill(0xff), 0x01]), "longer than 10 bytes"],
    ["a group (wire type 3)", new Uint8Array([0x6b, 0x38, 0x73, 0x00, 0x0b]), "wire type 3"],
    ["field number 0", new Uint8Array([0x6b, 0x38, 0x73, 0x00, 0x02, 0x00]), "field number 0"],
    ["a fixed64 past the end", new Uint8Array([0x6b, 0x38, 0x73, 0x00, 0x49, 1, 2]), "runs past the end"],
    ["a name that is not UTF-8", envelope("v1", "Secret", bytes(1, bytes(1, [0xff, 0xfe]))), "not UTF-8"],
    ["metadata with the wrong wire type", envelope("v1", "Secret", num(1, 5)), "wire type 0, expected 2"],
    ["immutable with the wrong wire type", envelope("v1", "Secret", bytes(5, "x")), "wire type 2, expected 0"],
    ["a compressed body", envelope("v1", "Secret", secretRaw, bytes(3, "gzip")), "contentEncoding"],
    ["a map entry cut short", envelope("v1", "Secret", bytes(2, [0x0a, 0x05, 0x61])), "longer than the message"],
  ])("%s", (_name, body, message) => {
    let err: unknown;
    try {
      decodeProtobuf(body);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(BadRequestError);
    expect((err as Error).message).toContain(message);
  });

  test("a kind it does not read: 415 saying to send JSON", () => {
    expect(() => decodeProtobuf(envelope("v1", "ConfigMap", []))).toThrow(UnsupportedMediaTypeError);
    expect(() => decodeProtobuf(envelope("apps/v1", "Secret", []))).toThrow("send this one as application/json");
  });

  test("maps are bounded", () => {
    const raw = [...bytes(1, bytes(1, "s"))];
    for (let i = 0; i <= 4096; i++) raw.push(...entry(4, `k${i}`, "v"));
    expect(() => decodeProtobuf(envelope("v1", "Secret", raw))).toThrow("more than 4096 entries");
  });

  test("random bytes after the prefix never throw anything but a 4xx", () => {
    let seed = 7;
    const rand = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    for (let i = 0; i < 2000; i++) {
      const body = new Uint8Array([0x6b, 0x38, 0x73, 0x00, ...Array.from({ length: Math.floor(rand() * 64) }, () => Math.floor(rand() * 256))]);
      try {
        decodeProtobuf(body);
      } catch (err) {
        if (!(err instanceof BadRequestError || err instanceof UnsupportedMediaTypeError)) throw err;
      }
    }
  });
});
