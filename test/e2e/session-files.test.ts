/**
 * A session's files for real: a server running pai/echo sessions, files written into a session's
 * working folder from here (as an agent's tools would), the files API read with namespace tokens
 * over loopback, the CLI's `pai files` and `pai cp`, and the attacks a hostile agent or caller
 * would try (traversal in every spelling, links to the data dir, FIFOs, hard links): each is
 * refused and the admin token never appears in an answer.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, linkSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { eventually, removeDir, startServer, tempDir, type TestServer } from "../helpers";

let server: TestServer;
let nsToken: string;
let otherToken: string;
/** A webhook session (its folder has webhook.json) that the tests fill with files, and one without a folder. */
let withFiles: string;
let noFolder: string;
let folder: string;
const bigFile = new Uint8Array(3 * 1024 * 1024 + 17).map((_, i) => (i * 7919) % 251);
const local = tempDir("pai-cp-");

const read = (path: string, token = nsToken) => fetch(`${server.url}${path}`, { headers: { authorization: `Bearer ${token}` } });

/** A request sent byte for byte as written (fetch would normalise `..` and `%2e%2e` away before sending). */
function rawGet(path: string, token = nsToken): Promise<{ status: number; text: string }> {
  const { hostname, port } = new URL(server.url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname, () => {
      socket.write(`GET ${path} HTTP/1.1\r\nHost: ${hostname}:${port}\r\nAuthorization: Bearer ${token}\r\nConnection: close\r\n\r\n`);
    });
    const chunks: Buffer[] = [];
    socket.on("data", (c: Buffer) => chunks.push(c));
    socket.on("error", reject);
    socket.on("end", () => {
      const text = Buffer.concat(chunks).toString("latin1");
      resolve({ status: Number(/^HTTP\/1\.1 (\d+)/.exec(text)?.[1] ?? 0), text });
    });
    socket.setTimeout(5000, () => {
      socket.destroy();
      reject(new Error(`no answer to GET ${path} within 5 s`));
    });
  });
}

async function waitPhase(name: string, phase: string) {
  await eventually(async () => ((await (await read(`/agents/${name}?namespace=default`)).json()) as { phase: string }).phase === phase, 10_000, `${name} ${phase}`);
}

beforeAll(async () => {
  server = await startServer();
  nsToken = (await server.cli(["create", "token", "-n", "default"])).stdout.trim();
  otherToken = (await server.cli(["create", "token", "-n", "other"])).stdout.trim();
  const put = await server.api("/apis/pai.io/v1/namespaces/default/agents/echo", {
    method: "PUT",
    json: { apiVersion: "pai.io/v1", kind: "Agent", metadata: { name: "echo" }, spec: { models: ["pai/echo"], triggers: [{ webhook: {} }] } },
  });
  expect(put.status).toBeLessThan(300);
  const url = await eventually(
    async () => ((await (await server.api("/apis/pai.io/v1/namespaces/default/agents/echo")).json()) as { status: { webhookUrl?: string } }).status.webhookUrl,
    5000,
    "webhook URL",
  );
  const hook = await fetch(url.replace(/^http:\/\/localhost:\d+/, server.url), {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ title: "summarise the ticket", ticket: { id: 42, text: "printer on fire" } }),
  });
  withFiles = ((await hook.json()) as { session: string }).session;
  const run = await server.cli(["run", "echo", "no files here"]);
  expect(run.code).toBe(0);
  noFolder = run.stdout.trim();
  await waitPhase(withFiles, "Complete");
  await waitPhase(noFolder, "Complete");

  // What an agent's tools could leave behind, harmless and hostile.
  folder = join(server.dataDir, "sessions", "default", withFiles);
  mkdirSync(join(folder, "notes", "deep"), { recursive: true });
  writeFileSync(join(folder, "notes", "report.md"), "# Report\n\nAll good.\n");
  writeFileSync(join(folder, "notes", "deep", "a.json"), '{"a":1}');
  writeFileSync(join(folder, "data.bin"), bigFile);
  writeFileSync(join(folder, 'weird "name" é.txt'), "odd name");
  writeFileSync(join(folder, "empty"), "");
  symlinkSync(join(server.dataDir, "admin-token"), join(folder, "leak"));
  symlinkSync("../../../admin-token", join(folder, "relative-leak"));
  symlinkSync(server.dataDir, join(folder, "linkdir"));
  symlinkSync(join(server.dataDir, "sessions"), join(folder, "notes", "up"));
  linkSync(join(server.dataDir, "admin-token"), join(folder, "hard"));
  expect(Bun.spawnSync(["mkfifo", join(folder, "pipe")]).exitCode).toBe(0);
});

afterAll(async () => {
  await server.stop();
  removeDir(local);
});

describe("listing a session's files", () => {
  test("every regular file, recursively, sorted, with size and time; links, FIFOs and hard links left out", async () => {
    const res = await read(`/agents/${withFiles}/files?namespace=default`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { session: string; namespace: string; files: { path: string; size: number; modifiedAt: string }[]; truncated: boolean };
    expect(body.session).toBe(withFiles);
    expect(body.namespace).toBe("default");
    expect(body.truncated).toBe(false);
    expect(body.files.map((f) => f.path)).toEqual(["data.bin", "empty", "notes/deep/a.json", "notes/report.md", "webhook.json", 'weird "name" é.txt']);
    const bySize = Object.fromEntries(body.files.map((f) => [f.path, f.size]));
    expect(bySize["data.bin"]).toBe(bigFile.length);
    expect(bySize["notes/report.md"]).toBe(20);
    expect(bySize.empty).toBe(0);
    for (const f of body.files) expect(Date.parse(f.modifiedAt)).toBeGreaterThan(Date.now() - 60_000);
    expect(JSON.stringify(body)).not.toContain(server.token);
  });

  test("a session without a folder has no files; an unknown session is a 404 Status", async () => {
    const res = await read(`/agents/${noFolder}/files?namespace=default`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ session: noFolder, namespace: "default", files: [], truncated: false });
    const missing = await read(`/agents/echo-run-deadbeef/files?namespace=default`);
    expect(missing.status).toBe(404);
    const status = (await missing.json()) as { kind: string; reason: string; message: string };
    expect(status.kind).toBe("Status");
    expect(status.reason).toBe("NotFound");
    expect(status.message).toContain("echo-run-deadbeef");
  });

  test("the webhook payload is there as webhook.json", async () => {
    const res = await read(`/agents/${withFiles}/files/webhook.json?namespace=default`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toStartWith("application/json");
    expect(await res.json()).toMatchObject({ ticket: { id: 42, text: "printer on fire" } });
  });
});

describe("downloading a file", () => {
  test("the bytes, with a type from the extension, as an attachment, never sniffed", async () => {
    const res = await read(`/agents/${withFiles}/files/notes/report.md?namespace=default`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe("# Report\n\nAll good.\n");
    expect(res.headers.get("content-type")).toStartWith("text/markdown");
    expect(res.headers.get("content-disposition")).toBe(`attachment; filename="report.md"; filename*=UTF-8''report.md`);
    expect(res.headers.get("content-length")).toBe("20");
    expect(res.headers.get("x-content-type-options")).toBe("nosniff");
    expect(res.headers.get("content-security-policy")).toContain("sandbox");
  });

  test("a large binary file is streamed and arrives whole; an unknown extension is application/octet-stream", async () => {
    const res = await read(`/agents/${withFiles}/files/data.bin?namespace=default`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/octet-stream");
    const got = new Uint8Array(await res.arrayBuffer());
    expect(got.length).toBe(bigFile.length);
    expect(Bun.hash(got)).toBe(Bun.hash(bigFile));
  });

  test("an empty file, and a name with quotes and non-ASCII, percent-encoded in the URL, quoted safely in the header", async () => {
    const empty = await read(`/agents/${withFiles}/files/empty?namespace=default`);
    expect(empty.status).toBe(200);
    expect(await empty.text()).toBe("");
    const res = await read(`/agents/${withFiles}/files/${encodeURIComponent('weird "name" é.txt')}?namespace=default`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe("odd name");
    expect(res.headers.get("content-disposition")).toBe(`attachment; filename="weird _name_ _.txt"; filename*=UTF-8''weird%20%22name%22%20%C3%A9.txt`);
  });

  test("a missing file, a folder and a file used as a folder: 404 or 400 with a Status", async () => {
    for (const [path, code] of [["nope.txt", 404], ["notes/nope", 404], ["notes/report.md/x", 404], ["notes", 400], ["notes/deep", 400]] as const) {
      const res = await read(`/agents/${withFiles}/files/${path}?namespace=default`);
      expect(res.status).toBe(code);
      expect(((await res.json()) as { kind: string }).kind).toBe("Status");
    }
  });
});

describe("who may read", () => {
  test("no token 401; another namespace's token 403; its own namespace does not have the session: 404; the admin token may", async () => {
    for (const path of [`/agents/${withFiles}/files?namespace=default`, `/agents/${withFiles}/files/notes/report.md?namespace=default`]) {
      expect((await fetch(`${server.url}${path}`)).status).toBe(401);
      expect((await read(path, "pai_not-a-token")).status).toBe(401);
      const forbidden = await read(path, otherToken);
      expect(forbidden.status).toBe(403);
      expect(((await forbidden.json()) as { message: string }).message).toContain('"other"');
      expect((await read(path.replace("namespace=default", "namespace=other"), otherToken)).status).toBe(404);
      expect((await read(path, server.token)).status).toBe(200);
    }
    // Without ?namespace=, a namespace token reads its own namespace.
    expect((await read(`/agents/${withFiles}/files/notes/report.md`)).status).toBe(200);
    expect((await read(`/agents/${withFiles}/files/notes/report.md`, otherToken)).status).toBe(404);
    expect((await read(`/agents/${withFiles}/files?namespace=Not_A_Label`)).status).toBe(400);
  });
});

describe("attacks", () => {
  const secretOut = (text: string) => {
    expect(text).not.toContain(server.token);
    expect(text).not.toContain("SQLite format 3");
  };

  test("traversal in every spelling, absolute paths, NUL and bad escapes are refused", async () => {
    const paths = [
      "../../../admin-token",
      "notes/../../../../admin-token",
      "%2e%2e/%2e%2e/%2e%2e/admin-token",
      "%2E%2E/%2E%2E/%2E%2E/admin-token",
      ".%2e/.%2e/.%2e/admin-token",
      "..%2f..%2f..%2fadmin-token",
      "%2e%2e%2f%2e%2e%2f%2e%2e%2fadmin-token",
      "notes%2f..%2f..%2f..%2f..%2fadmin-token",
      "..%5c..%5c..%5cadmin-token",
      "%252e%252e/%252e%252e/admin-token",
      "/etc/passwd",
      "//etc/passwd",
      "%2fetc%2fpasswd",
      `${"%2e%2e/".repeat(12)}etc/passwd`,
      "notes%00.md",
      "notes/report.md%00",
      "%00",
      "%ZZ",
      "notes//report.md",
      "notes/",
    ];
    for (const p of paths) {
      const res = await rawGet(`/agents/${withFiles}/files/${p}?namespace=default`);
      expect({ p, status: res.status >= 400 && res.status < 500 }).toEqual({ p, status: true });
      secretOut(res.text);
      expect(res.text).not.toContain("root:x:0:0");
    }
  });

  test("a link to the admin token, a relative link, a linked folder, a link to a folder inside a folder: refused as links", async () => {
    for (const p of ["leak", "relative-leak", "linkdir/admin-token", "linkdir/pai.db", "notes/up/default", `notes/up/default/${withFiles}/notes/report.md`]) {
      const res = await rawGet(`/agents/${withFiles}/files/${p}?namespace=default`);
      expect({ p, status: res.status }).toEqual({ p, status: 400 });
      expect(res.text).toContain("symbolic link");
      secretOut(res.text);
    }
  });

  test("a FIFO is refused at once (not opened, so nothing hangs), and so is a hard link to the admin token", async () => {
    const fifo = await rawGet(`/agents/${withFiles}/files/pipe?namespace=default`);
    expect(fifo.status).toBe(400);
    expect(fifo.text).toContain("FIFO");
    const hard = await rawGet(`/agents/${withFiles}/files/hard?namespace=default`);
    expect(hard.status).toBe(400);
    expect(hard.text).toContain("hard links");
    secretOut(hard.text);
  });

  test("a session folder that is itself a link is not read", async () => {
    const run = await server.cli(["run", "echo", "my folder will be a link"]);
    const name = run.stdout.trim();
    await waitPhase(name, "Complete");
    symlinkSync(server.dataDir, join(server.dataDir, "sessions", "default", name));
    const list = await read(`/agents/${name}/files?namespace=default`);
    expect(list.status).toBe(400);
    secretOut(await list.text());
    const file = await read(`/agents/${name}/files/admin-token?namespace=default`);
    expect(file.status).toBe(400);
    secretOut(await file.text());
  });
});

describe("the CLI", () => {
  test("pai files prints a table; -o json the listing; an unknown session fails", async () => {
    const r = await server.cli(["files", withFiles]);
    expect(r.code).toBe(0);
    const lines = r.stdout.trimEnd().split("\n");
    expect(lines[0]).toMatch(/^PATH\s+SIZE\s+MODIFIED$/);
    expect(lines.slice(1).map((l) => l.split(/\s{3,}/)[0])).toEqual(["data.bin", "empty", "notes/deep/a.json", "notes/report.md", "webhook.json", 'weird "name" é.txt']);
    expect(r.stdout).toContain(String(bigFile.length));
    const json = await server.cli(["files", withFiles, "-o", "json"]);
    expect(JSON.parse(json.stdout).files).toHaveLength(6);
    const none = await server.cli(["files", noFolder]);
    expect(none.stdout).toBe("No files found.\n");
    const missing = await server.cli(["files", "echo-run-deadbeef"]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain("not found");
  });

  test("pai files shows control characters in names escaped, never raw to the terminal", async () => {
    const run = await server.cli(["run", "echo", "odd names"]);
    const name = run.stdout.trim();
    await waitPhase(name, "Complete");
    const dir = join(server.dataDir, "sessions", "default", name);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "evil\x1b]0;pwned\x07\nname.txt"), "x");
    const r = await server.cli(["files", name]);
    expect(r.code).toBe(0);
    expect(r.stdout).not.toContain("\x1b");
    expect(r.stdout).not.toContain("\x07");
    expect(r.stdout).toContain("evil\\x1b]0;pwned\\x07\\x0aname.txt");
  });

  test("pai cp copies into a folder under the file's name, over an existing file, and to stdout with -", async () => {
    const intoDir = await server.cli(["cp", `${withFiles}:notes/report.md`, local]);
    expect(intoDir.code).toBe(0);
    expect(readFileSync(join(local, "report.md"), "utf8")).toBe("# Report\n\nAll good.\n");
    writeFileSync(join(local, "existing.bin"), "old content");
    const over = await server.cli(["cp", `${withFiles}:data.bin`, join(local, "existing.bin")]);
    expect(over.code).toBe(0);
    expect(Bun.hash(readFileSync(join(local, "existing.bin")))).toBe(Bun.hash(bigFile));
    const stdout = await server.cli(["cp", `${withFiles}:notes/deep/a.json`, "-"]);
    expect(stdout.code).toBe(0);
    expect(stdout.stdout).toBe('{"a":1}');
    const odd = await server.cli(["cp", `${withFiles}:weird "name" é.txt`, `${local}/`]);
    expect(odd.code).toBe(0);
    expect(readFileSync(join(local, 'weird "name" é.txt'), "utf8")).toBe("odd name");
  });

  test("pai cp refuses links and other namespaces, and leaves no file behind", async () => {
    const link = await server.cli(["cp", `${withFiles}:leak`, join(local, "leak")]);
    expect(link.code).toBe(1);
    expect(link.stderr).toContain("symbolic link");
    expect(existsSync(join(local, "leak"))).toBe(false);
    const other = await server.cli(["cp", `${withFiles}:notes/report.md`, join(local, "x"), "-n", "default"], { env: { PAI_TOKEN: otherToken } });
    expect(other.code).toBe(1);
    expect(other.stderr).toContain('"other"');
    expect(existsSync(join(local, "x"))).toBe(false);
    const usage = await server.cli(["cp", "no-colon", local]);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain("SESSION:PATH");
  });
});

describe("the OpenAPI document", () => {
  test("describes both routes", async () => {
    const doc = (await (await fetch(`${server.url}/openapi/json`)).json()) as { paths: Record<string, Record<string, any>> };
    const list = doc.paths["/agents/{session}/files"]!.get;
    expect(list.tags).toEqual(["Sessions"]);
    // The route's own response schema, as a component.
    expect(list.responses["200"].content["application/json"].schema).toEqual({ $ref: "#/components/schemas/SessionFileList" });
    expect(Object.keys((doc as any).components.schemas.SessionFileList.properties).sort()).toEqual(["files", "namespace", "session", "truncated"]);
    const download = doc.paths["/agents/{session}/files/{path}"]!.get;
    expect(download.parameters.map((p: { name: string }) => p.name)).toEqual(["session", "path", "namespace"]);
    expect(Object.keys(download.responses["200"].content)).toEqual(["application/octet-stream"]);
    expect(Object.keys(doc.paths).filter((p) => p.includes("*"))).toEqual([]);
  });
});
