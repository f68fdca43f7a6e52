/**
 * The session file service and the files API's helpers without a server: path rules, URL
 * decoding, the Content-Disposition header, and the listing's cap.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { attachment, contentTypeOf, pathSegments } from "../../src/api/files";
import { NotFoundError } from "../../src/domain/errors";
import type { Session } from "../../src/domain/session";
import { createSessionFileService, filePathProblem } from "../../src/service/session-files";
import { removeDir, tempDir } from "../helpers";

let dir: string;
const sessions = {
  get(namespace: string, name: string): Session {
    if (namespace !== "default" || !name.startsWith("s-")) throw new NotFoundError(`session "${name}" not found in namespace "${namespace}"`);
    return { name, namespace } as Session;
  },
};

beforeAll(() => {
  dir = tempDir("pai-files-");
  const folder = join(dir, "default", "s-1");
  mkdirSync(join(folder, "b"), { recursive: true });
  for (const f of ["c.txt", "a.txt", "b/x.txt", "b/y.txt"]) writeFileSync(join(folder, f), f);
});
afterAll(() => removeDir(dir));

describe("the listing", () => {
  test("sorted, and cut at maxFiles with truncated: true", async () => {
    const all = await createSessionFileService({ sessions, workDir: dir }).list("default", "s-1");
    expect(all).toMatchObject({ truncated: false, files: [{ path: "a.txt" }, { path: "b/x.txt" }, { path: "b/y.txt" }, { path: "c.txt" }] });
    const cut = await createSessionFileService({ sessions, workDir: dir, maxFiles: 3 }).list("default", "s-1");
    expect(cut.truncated).toBe(true);
    expect(cut.files).toHaveLength(3);
  });

  test("an unknown session is a NotFoundError; one without a folder lists nothing", async () => {
    const svc = createSessionFileService({ sessions, workDir: dir });
    await expect(svc.list("default", "nope")).rejects.toBeInstanceOf(NotFoundError);
    expect(await svc.list("default", "s-2")).toEqual({ files: [], truncated: false });
  });

  test("a small file is read whole", async () => {
    const f = await createSessionFileService({ sessions, workDir: dir }).open("default", "s-1", ["b", "x.txt"]);
    expect(f.name).toBe("x.txt");
    expect(f.size).toBe(7);
    expect(new TextDecoder().decode(f.body as Uint8Array)).toBe("b/x.txt");
  });
});

describe("paths", () => {
  test("what filePathProblem refuses", () => {
    expect(filePathProblem(["a", "b.txt"])).toBeUndefined();
    expect(filePathProblem(["a\\..\\b"])).toBeUndefined(); // a backslash is a character of the name on POSIX
    for (const bad of [[], [""], ["a", ""], [".."], ["a", ".", "b"], ["a\0b"], ["a/b"], Array(65).fill("d"), ["x".repeat(4097)]]) expect(filePathProblem(bad)).toBeString();
  });

  test("pathSegments decodes each component once, and refuses encoded separators and bad escapes", () => {
    const u = (p: string) => `http://localhost/agents/s-1/files/${p}?namespace=default`;
    expect(pathSegments(u("a/b%20c.txt"))).toEqual(["a", "b c.txt"]);
    expect(pathSegments(u("%252e%252e"))).toEqual(["%2e%2e"]);
    expect(pathSegments(u("caf%C3%A9"))).toEqual(["café"]);
    expect(pathSegments(u("a%00b"))).toEqual(["a\0b"]);
    expect(() => pathSegments(u("..%2fadmin-token"))).toThrow(/encoded/);
    expect(() => pathSegments(u("..%5Cadmin-token"))).toThrow(/encoded/);
    expect(() => pathSegments(u("%E0%A4%A"))).toThrow(/percent-encoding/);
  });

  test("attachment names the file safely; contentTypeOf guesses from the extension", () => {
    expect(attachment("report.md")).toBe(`attachment; filename="report.md"; filename*=UTF-8''report.md`);
    expect(attachment('a"b\\c;d%e\r\nf')).toBe(`attachment; filename="a_b_c_d_e__f"; filename*=UTF-8''a%22b%5Cc%3Bd%25e%0D%0Af`);
    expect(attachment("naïve (1)'s.txt")).toBe(`attachment; filename="na_ve (1)'s.txt"; filename*=UTF-8''na%C3%AFve%20%281%29%27s.txt`);
    expect(contentTypeOf("x.json")).toStartWith("application/json");
    expect(contentTypeOf("x.png")).toBe("image/png");
    expect(contentTypeOf("Makefile")).toBe("application/octet-stream");
    expect(contentTypeOf("x.weird-ext")).toBe("application/octet-stream");
  });
});
