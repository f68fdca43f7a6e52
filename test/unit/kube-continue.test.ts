/**
 * continue tokens: they round-trip, say nothing readable, and a forged, altered, foreign or
 * garbage token is a 400 or 410, never a crash; a list pages through every object exactly once.
 */
import { describe, expect, test } from "bun:test";
import { BadRequestError, ExpiredError } from "../../src/domain/errors";
import { openContinue, sealContinue } from "../../src/api/kube/continue";
import { listOptions, page, type View } from "../../src/api/kube/list";
import { AGENTS } from "../../src/api/kube/resources";
import type { KubeObject } from "../../src/api/kube/table";

describe("tokens", () => {
  test("round-trip, opaque, and different each time", () => {
    const a = sealContinue({ list: "sessions/team", after: [1234] });
    const b = sealContinue({ list: "sessions/team", after: [1234] });
    expect(a).not.toBe(b);
    expect(a).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(Buffer.from(a, "base64url").toString("latin1")).not.toContain("1234");
    expect(openContinue(a, "sessions/team")).toEqual({ list: "sessions/team", after: [1234] });
  });

  test("another list's token: 400", () => {
    expect(() => openContinue(sealContinue({ list: "agents/a", after: ["a", "x"] }), "agents/b")).toThrow("belongs to another list");
  });

  test("an altered token does not open: 410", () => {
    const t = sealContinue({ list: "agents/", after: ["default", "x"] });
    for (const i of [0, 5, 20, t.length - 3]) {
      const flipped = t.slice(0, i) + (t[i] === "A" ? "B" : "A") + t.slice(i + 1);
      expect(() => openContinue(flipped, "agents/")).toThrow(ExpiredError);
    }
    expect(() => openContinue(Buffer.alloc(60, 1).toString("base64url"), "agents/")).toThrow(ExpiredError);
  });

  test.each(["", "abc", "not base64!", "a".repeat(2000), "%00", Buffer.from('{"list":"agents/","after":[]}').toString("base64url").slice(0, 20)])("garbage %p: 400", (t) => {
    expect(() => openContinue(t, "agents/")).toThrow(BadRequestError);
  });
});

describe("paging a list", () => {
  const view: View = { resource: AGENTS, columns: [], cells: () => [] };
  const objects: KubeObject[] = ["b-x", "ab", "a-c", "a", "zz", "m"].flatMap((name) =>
    ["team", "default"].map((namespace) => ({ apiVersion: "pai.io/v1", kind: "Agent", metadata: { name, namespace, labels: { odd: String(name.length % 2 === 1) } } })),
  );
  const request = (q: string) => new Request(`http://localhost/apis/pai.io/v1/agents?${q}`);

  test("limit and continue visit every selected object once, in namespace/name order", () => {
    const seen: string[] = [];
    let token = "";
    for (let i = 0; i < 20; i++) {
      const p = page(view, listOptions(request(`limit=5&labelSelector=odd%3Dtrue${token ? `&continue=${token}` : ""}`), view, undefined), objects);
      seen.push(...p.items.map((o) => `${o.metadata.namespace}/${o.metadata.name}`));
      if (!p.continue) break;
      expect(p.remainingItemCount).toBeGreaterThan(0);
      token = p.continue;
    }
    const want = objects.filter((o) => o.metadata.name.length % 2 === 1).map((o) => `${o.metadata.namespace}/${o.metadata.name}`);
    expect(seen).toEqual([...want].sort());
  });

  test("without a limit, everything in one page; limit and resourceVersion are checked", () => {
    expect(page(view, listOptions(request(""), view, undefined), objects).items).toHaveLength(objects.length);
    expect(() => listOptions(request("limit=-1"), view, undefined)).toThrow("limit must be a whole number");
    expect(() => listOptions(request("limit=1e3"), view, undefined)).toThrow("limit must be a whole number");
    expect(() => listOptions(request("resourceVersion=abc"), view, undefined)).toThrow("not a resource version");
    expect(() => listOptions(request("resourceVersionMatch=Soon"), view, undefined)).toThrow("resourceVersionMatch");
  });

  test("a token of the all-namespaces list does not continue a namespace's list", () => {
    const p = page(view, listOptions(request("limit=1"), view, undefined), objects);
    expect(() => listOptions(request(`continue=${p.continue}`), view, "team")).toThrow("belongs to another list");
  });
});
