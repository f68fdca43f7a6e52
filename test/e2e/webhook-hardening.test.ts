/**
 * What a hostile webhook caller could do, tried against a real server: bodies nested absurdly
 * deep, bodies that never end or never stop, many bodies at once, signed bodies in other charsets,
 * and what the agent's webhook.json keeps. Each test failed on the code before the fix.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHmac } from "node:crypto";
import { connect, type Socket } from "node:net";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { hang, startModelServer, type FakeModelServer } from "../fakes/model-server";
import { eventually, startServer, type TestServer } from "../helpers";

let server: TestServer;
let models: FakeModelServer;
const urls: Record<string, string> = {};
const MAX_BODY = 64 * 1024;

async function apply(name: string, spec: Record<string, unknown>) {
  const res = await server.api(`/apis/pai.io/v1/namespaces/default/agents/${name}`, {
    method: "PUT",
    json: { apiVersion: "pai.io/v1", kind: "Agent", metadata: { name }, spec },
  });
  expect(res.status).toBeLessThan(300);
  urls[name] = await eventually(async () => {
    const a = (await (await server.api(`/apis/pai.io/v1/namespaces/default/agents/${name}`)).json()) as { status: { webhookUrl?: string } };
    return a.status.webhookUrl?.replace(/^http:\/\/localhost:\d+/, server.url);
  }, 5000, `webhook URL of ${name}`);
}

const post = (name: string, body: string | Uint8Array, headers: Record<string, string> = { "content-type": "application/json" }) =>
  fetch(urls[name]!, { method: "POST", headers, body: body as BodyInit });
const message = async (res: Response) => ((await res.json()) as { message: string }).message;
const session = async (name: string) => (await (await server.api(`/agents/${name}?namespace=default`)).json()) as { phase: string; title: string };

/** A raw HTTP/1.1 connection: what a client that sends headers and then dawdles looks like. */
function rawRequest(path: string, head: Record<string, string>): Promise<{ socket: Socket; response: Promise<string> }> {
  const { hostname, port } = new URL(server.url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname, () => {
      const lines = [`POST ${path} HTTP/1.1`, `host: ${hostname}:${port}`, ...Object.entries(head).map(([k, v]) => `${k}: ${v}`), "", ""];
      socket.write(lines.join("\r\n"));
      let data = "";
      const response = new Promise<string>((done) => {
        socket.on("data", (d) => {
          data += d.toString("latin1");
          if (/\r\n\r\n/.test(data)) done(data);
        });
        socket.on("close", () => done(data));
        socket.on("error", () => done(data));
      });
      resolve({ socket, response });
    });
    socket.on("error", reject);
  });
}
const pathOf = (url: string) => new URL(url).pathname;

beforeAll(async () => {
  models = startModelServer();
  server = await startServer({
    args: ["--max-body-bytes", String(MAX_BODY)],
    env: { ANTHROPIC_API_KEY: "k", ANTHROPIC_BASE_URL: models.anthropicBaseUrl },
  });
  await apply("echo", { models: ["pai/echo"], triggers: [{ webhook: {} }] });
  await apply("linear", { models: ["pai/echo"], triggers: [{ webhook: { linearSignatureSecret: "lin-secret" } }] });
  await apply("github", { models: ["pai/echo"], triggers: [{ webhook: { githubSignatureSecret: "gh-secret" } }] });
  await apply("one-at-a-time", { models: ["anthropic/claude-parked"], maxConcurrentSessions: 1, triggers: [{ webhook: {} }] });
});
afterAll(async () => {
  await server.stop();
  await models.stop();
});

describe("nesting", () => {
  test("a JSON body nested 20,000 levels deep (40 KB) is a 400 that says so; the server stays responsive", async () => {
    const deep = "[".repeat(20_000) + "]".repeat(20_000);
    const res = await post("echo", deep);
    expect(res.status).toBe(400);
    expect(await message(res)).toBe("request body is nested more than 64 levels deep");
    expect((await fetch(`${server.url}/readyz`)).status).toBe(200);
  });

  test("objects nested as deep as the body cap allows (~13,000 levels): 400, not 500", async () => {
    const levels = Math.floor((MAX_BODY - 10) / 6);
    const res = await post("echo", '{"a":'.repeat(levels) + "1" + "}".repeat(levels));
    expect(res.status).toBe(400);
    expect(await message(res)).toContain("nested more than 64 levels");
  });

  test("deep JSON inside a form's payload or env field is refused too", async () => {
    const form = { "content-type": "application/x-www-form-urlencoded" };
    const res = await post("echo", `payload=${encodeURIComponent("[".repeat(1000) + "]".repeat(1000))}`, form);
    expect(res.status).toBe(400);
    expect(await message(res)).toBe("form field payload is nested more than 64 levels deep");
  });

  test("64 levels are fine, and brackets inside strings do not count", async () => {
    const ok = JSON.stringify({ title: "[[[[".repeat(100), deep: JSON.parse("[".repeat(62) + "]".repeat(62)) });
    expect((await post("echo", ok)).status).toBe(200);
  });
});

describe("bodies", () => {
  test("an unknown agent is answered without reading the body: the answer comes while the body is still unsent", async () => {
    const { socket, response } = await rawRequest("/webhooks/default/nobody/" + "0".repeat(64), { "content-type": "application/json", "content-length": "60000" });
    socket.write("{");
    const head = await response;
    socket.destroy();
    expect(head).toStartWith("HTTP/1.1 404");
  });

  test("a wrong token is answered without reading the body", async () => {
    const path = pathOf(urls.echo!).replace(/[0-9a-f]{64}$/, "f".repeat(64));
    const { socket, response } = await rawRequest(path, { "content-type": "application/json", "content-length": "60000" });
    socket.write("{");
    const head = await response;
    socket.destroy();
    expect(head).toStartWith("HTTP/1.1 401");
  });

  test("a chunked body larger than --max-body-bytes is a clean 413, with nothing logged as unhandled", async () => {
    const { socket, response } = await rawRequest(pathOf(urls.echo!), { "content-type": "application/json", "transfer-encoding": "chunked" });
    let answered = false;
    response.then(() => (answered = true));
    const chunk = Buffer.alloc(16 * 1024, 0x20);
    for (let sent = 0; !answered && sent < 20 * MAX_BODY; sent += chunk.length) {
      if (socket.destroyed) break;
      socket.write(`${chunk.length.toString(16)}\r\n`);
      socket.write(chunk);
      socket.write("\r\n");
      await Bun.sleep(1);
    }
    const head = await response;
    socket.destroy();
    expect(head).toStartWith("HTTP/1.1 413");
    expect(server.logs()).not.toContain("unhandled");
    expect((await fetch(`${server.url}/readyz`)).status).toBe(200);
  });

  test("bodies being read at once are capped server-wide: beyond the budget 503 + Retry-After, and all is well after", async () => {
    // The budget is 64 bodies of --max-body-bytes; 80 callers each hold 2/3 of a body open.
    const share = Math.floor((MAX_BODY * 2) / 3);
    const open = await Promise.all(
      Array.from({ length: 100 }, async () => {
        const r = await rawRequest(pathOf(urls.echo!), { "content-type": "application/json", "content-length": String(share + 10) });
        r.socket.write(Buffer.alloc(share, 0x20));
        return r;
      }),
    );
    const refused = await eventually(async () => {
      const settled = await Promise.all(open.map((r) => Promise.race([r.response, Bun.sleep(50).then(() => "")])));
      const busy = settled.filter((h) => h.startsWith("HTTP/1.1 503"));
      return busy.length ? busy : undefined;
    }, 10_000, "503s once the body budget is used up");
    expect(refused[0]).toMatch(/retry-after: 2/i);
    for (const r of open) r.socket.destroy();
    const res = await eventually(async () => {
      const r = await post("echo", JSON.stringify({ title: "after the flood" }));
      return r.status === 200 ? r : undefined;
    }, 5000, "a normal delivery after the slow callers left");
    expect(res.status).toBe(200);
  });

  test("text/plain bodies are read as JSON; other types are a 415; an unknown charset is a 415", async () => {
    expect((await post("echo", '{"title":"plain"}', { "content-type": "text/plain" })).status).toBe(200);
    const html = await post("echo", "<p>hi</p>", { "content-type": "text/html" });
    expect(html.status).toBe(415);
    const charset = await post("echo", '{"title":"x"}', { "content-type": "application/json; charset=klingon" });
    expect(charset.status).toBe(415);
    expect(await message(charset)).toContain('charset "klingon" is not supported');
  });
});

describe("signatures over the bytes sent", () => {
  const linearHeaders = (body: Uint8Array, extra: Record<string, string> = {}) => ({
    "content-type": "application/json",
    "linear-signature": createHmac("sha256", "lin-secret").update(body).digest("hex"),
    "linear-delivery": crypto.randomUUID(),
    ...extra,
  });

  test("a signed Linear body in Latin-1 is accepted and decoded by its charset", async () => {
    const text = JSON.stringify({ action: "create", type: "Project", data: { name: "Café" }, webhookTimestamp: Date.now() });
    const bytes = new Uint8Array(Buffer.from(text, "latin1"));
    expect(bytes.includes(0xe9)).toBe(true);
    const res = await post("linear", bytes, linearHeaders(bytes, { "content-type": "application/json; charset=iso-8859-1" }));
    expect(res.status).toBe(200);
    const { session: name } = (await res.json()) as { session: string };
    expect((await session(name)).title).toBe("Project created: Café");
  });

  test("a signed body that starts with a byte-order mark is accepted", async () => {
    const text = JSON.stringify({ action: "opened", number: 1, pull_request: { title: "BOM", number: 1 }, repository: { full_name: "a/b" } });
    const bytes = new Uint8Array([0xef, 0xbb, 0xbf, ...Buffer.from(text)]);
    const signature = "sha256=" + createHmac("sha256", "gh-secret").update(bytes).digest("hex");
    const res = await post("github", bytes, { "content-type": "application/json", "x-github-event": "pull_request", "x-hub-signature-256": signature, "x-github-delivery": crypto.randomUUID() });
    expect(res.status).toBe(200);
    const { session: name } = (await res.json()) as { session: string };
    expect((await session(name)).title).toBe("Pull request opened: BOM (#1) in a/b");
  });
});

describe("values crafted to break the server later", () => {
  test("an event name that is not a string (an object with a broken toString) is accepted and the session runs; the server lives", async () => {
    const res = await post("echo", JSON.stringify({ type: { toString: "" }, action: "create", data: {} }), { "content-type": "application/json", "linear-event": "Issue" });
    expect(res.status).toBe(200);
    const { session: name } = (await res.json()) as { session: string };
    await eventually(async () => (await session(name)).phase === "Complete", 10_000, "the session completes");
    expect((await fetch(`${server.url}/readyz`)).status).toBe(200);
  });

  test("env values that exec would refuse (a NUL byte, over 32 KiB) are a 400, not a session that can never start", async () => {
    const nul = await post("echo", JSON.stringify({ title: "x", env: [{ name: "A", value: "a\u0000b" }] }));
    expect(nul.status).toBe(400);
    expect(await message(nul)).toContain("NUL");
    const long = await post("echo", JSON.stringify({ title: "x", env: [{ name: "A", value: "x".repeat(40_000) }] }));
    expect(long.status).toBe(400);
    expect(await message(long)).toBe("env[0].value is longer than 32768 characters");
  });
});

describe("replayed signed deliveries", () => {
  test("a signed GitHub body sent again with a new delivery id and a relabelled event starts nothing new", async () => {
    const body = Buffer.from(JSON.stringify({ action: "opened", number: 9, pull_request: { title: "Replay me", number: 9 }, repository: { full_name: "a/b" } }));
    const signature = "sha256=" + createHmac("sha256", "gh-secret").update(body).digest("hex");
    const send = (event: string) =>
      post("github", body, { "content-type": "application/json", "x-github-event": event, "x-hub-signature-256": signature, "x-github-delivery": crypto.randomUUID() });
    const first = (await (await send("pull_request")).json()) as { session: string };
    const again = await send("issues");
    expect(again.status).toBe(200);
    expect(((await again.json()) as { session: string }).session).toBe(first.session);
    // Signed with upper-case hex, it is still the same signature.
    const upper = await post("github", body, { "content-type": "application/json", "x-github-event": "push", "x-hub-signature-256": signature.toUpperCase().replace("SHA256=", "sha256="), "x-github-delivery": crypto.randomUUID() });
    expect(((await upper.json()) as { session: string }).session).toBe(first.session);
  });

  test("a signed Linear body replayed within its 60 s under a new Linear-Delivery starts nothing new", async () => {
    const bytes = new Uint8Array(Buffer.from(JSON.stringify({ action: "create", type: "Project", data: { name: "Replay" }, webhookTimestamp: Date.now() })));
    const headers = () => ({
      "content-type": "application/json",
      "linear-signature": createHmac("sha256", "lin-secret").update(bytes).digest("hex"),
      "linear-delivery": crypto.randomUUID(),
    });
    const [a, b] = await Promise.all([post("linear", bytes, headers()), post("linear", bytes, headers())]);
    const c = await post("linear", bytes, headers());
    const names = await Promise.all([a, b, c].map(async (r) => ((await r.json()) as { session: string }).session));
    expect(new Set(names).size).toBe(1);
  });
});

describe("what the agent and the caller are told", () => {
  test("webhook.json keeps the event but not the env values", async () => {
    const res = await post("echo", JSON.stringify({ title: "with env", env: [{ name: "API_TOKEN", value: "s3cr3t-value" }], order: 42 }));
    expect(res.status).toBe(200);
    const { session: name } = (await res.json()) as { session: string };
    await eventually(async () => ["Complete", "Error"].includes((await session(name)).phase), 10_000, "session end");
    const text = readFileSync(join(server.dataDir, "sessions", "default", name, "webhook.json"), "utf8");
    expect(JSON.parse(text)).toEqual({ title: "with env", order: 42 });
    expect(text).not.toContain("s3cr3t-value");
  });

  test("a wait that runs out while the session is still queued says Pending", async () => {
    models.enqueue("claude-parked", hang);
    const first = await post("one-at-a-time", JSON.stringify({ title: "hold the only slot" }));
    const { session: running } = (await first.json()) as { session: string };
    await eventually(async () => (await session(running)).phase === "Running", 10_000, "first session running");
    const res = await post("one-at-a-time", JSON.stringify({ title: "queued", wait: 1 }));
    expect(res.status).toBe(200);
    const body = (await res.json()) as { phase: string; timedOut: boolean; response: null };
    expect(body).toMatchObject({ phase: "Pending", timedOut: true, response: null });
    await server.api(`/agents/${running}/cancel?namespace=default`, { method: "POST" });
  });
});
