/**
 * Server-side printing: which form an Accept header gets (kubectl's exact headers among them),
 * Table and metadata-only shapes, includeObject, and ages in kubectl's duration format.
 */
import { describe, expect, test } from "bun:test";
import { age, humanDuration, includeObjectOf, negotiate, table, type Column, type KubeObject } from "../../src/api/kube/table";

// What kubectl 1.32 sends for `kubectl get` and for `-o yaml`.
const KUBECTL_GET = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
const KUBECTL_YAML = "application/json";

describe("negotiate", () => {
  test.each([
    [null, { as: "object" }],
    [KUBECTL_GET, { as: "Table", version: "v1" }],
    [KUBECTL_YAML, { as: "object" }],
    ["application/json;as=Table;v=v1beta1;g=meta.k8s.io", { as: "Table", version: "v1beta1" }],
    ["application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io,application/json", { as: "PartialObjectMetadata", version: "v1" }],
    ["application/json;as=Table;v=v9;g=meta.k8s.io,application/json", { as: "object" }],
    ["application/json;as=Table;v=v1;g=other.io", { as: "object" }],
    ["application/vnd.kubernetes.protobuf,application/json", { as: "object" }],
    ["application/vnd.kubernetes.protobuf;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1;g=meta.k8s.io", { as: "Table", version: "v1" }],
    ["*/*", { as: "object" }],
    ['application/json; as="Table"; g=meta.k8s.io; v=v1', { as: "Table", version: "v1" }],
    [",,;;==", { as: "object" }],
  ])("%p → %j", (accept, want) => {
    expect(negotiate(accept)).toEqual(want as never);
  });

  test("includeObject: Metadata by default, None and Object on request, anything else a 400", () => {
    expect([includeObjectOf(null), includeObjectOf(""), includeObjectOf("None"), includeObjectOf("Object")]).toEqual(["Metadata", "Metadata", "None", "Object"]);
    expect(() => includeObjectOf("All")).toThrow("includeObject must be None, Metadata or Object");
  });
});

describe("table", () => {
  const columns: Column[] = [{ name: "Name", type: "string", format: "name", description: "n", priority: 0 }];
  const o: KubeObject = { apiVersion: "pai.io/v1", kind: "Agent", metadata: { name: "a", namespace: "default", labels: { x: "y" } }, spec: { models: ["pai/echo"] } };

  test("rows carry PartialObjectMetadata by default, the object or nothing on request", () => {
    const t = table("v1", columns, [{ cells: ["a"], object: o }], "Metadata", { resourceVersion: "5" });
    expect(t).toEqual({
      kind: "Table",
      apiVersion: "meta.k8s.io/v1",
      metadata: { resourceVersion: "5" },
      columnDefinitions: columns,
      rows: [{ cells: ["a"], object: { kind: "PartialObjectMetadata", apiVersion: "meta.k8s.io/v1", metadata: o.metadata } }],
    });
    expect(table("v1", columns, [{ cells: ["a"], object: o }], "Object").rows[0]!.object).toBe(o);
    expect(table("v1beta1", columns, [{ cells: ["a"], object: o }], "None").rows[0]).toEqual({ cells: ["a"] });
  });
});

describe("ages, as kubectl prints them", () => {
  const s = 1000;
  const m = 60 * s;
  const h = 60 * m;
  const d = 24 * h;
  test.each([
    [-5 * s, "<invalid>"],
    [-500, "0s"],
    [0, "0s"],
    [119 * s, "119s"],
    [2 * m, "2m"],
    [3 * m + 20 * s, "3m20s"],
    [15 * m, "15m"],
    [179 * m, "179m"],
    [3 * h, "3h"],
    [5 * h + 10 * m, "5h10m"],
    [8 * h, "8h"],
    [47 * h, "47h"],
    [2 * d, "2d"],
    [3 * d + 4 * h, "3d4h"],
    [8 * d, "8d"],
    [400 * d, "400d"],
    [730 * d, "2y"],
    [760 * d, "2y30d"],
    [3000 * d, "8y"],
  ])("%p ms → %p", (ms, want) => {
    expect(humanDuration(ms)).toBe(want);
  });

  test("age of a timestamp; an unreadable one is <unknown>", () => {
    expect(age("2020-01-01T00:00:00Z", Date.parse("2020-01-01T00:05:00Z"))).toBe("5m");
    expect(age("not a date")).toBe("<unknown>");
    expect(age(null)).toBe("<unknown>");
  });
});
