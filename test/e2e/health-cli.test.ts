/**
 * `pai health`: the container image's HEALTHCHECK (no curl inside). Exit 0 only for a 200 from
 * /readyz; 1 for any other status, a refused connection or no answer in 2 s; 2 for a bad --url.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { removeDir, runCli, startServer, type TestServer } from "../helpers";

let server: TestServer;
// Stand-ins for a server that is starting (503) and one that hangs.
const starting = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => new Response(JSON.stringify({ status: "starting" }), { status: 503 }) });
const hanging = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => new Promise<Response>(() => {}) });

beforeAll(async () => {
  server = await startServer();
});

afterAll(async () => {
  await server.stop();
  removeDir(server.dataDir);
  starting.stop(true);
  hanging.stop(true);
});

describe("pai health", () => {
  test("exits 0 when /readyz answers 200", async () => {
    const r = await runCli(["health", "--url", `${server.url}/readyz`]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("answered 200");
  });

  test("defaults to 127.0.0.1:$PAI_PORT/readyz", async () => {
    const r = await runCli(["health"], { env: { PAI_PORT: String(server.port) } });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`http://127.0.0.1:${server.port}/readyz`);
  });

  test("exits 1 on a non-200 answer", async () => {
    const r = await runCli(["health", "--url", `http://127.0.0.1:${starting.port}/readyz`]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("answered 503");
  });

  test("exits 1 when nothing listens", async () => {
    // A port that was free a moment ago: bound, then released.
    const probe = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => new Response("") });
    const port = probe.port;
    probe.stop(true);
    const r = await runCli(["health", "--url", `http://127.0.0.1:${port}/readyz`]);
    expect(r.code).toBe(1);
    expect(r.stderr).toStartWith("error: ");
  });

  test("exits 1 when the server does not answer within 2 s", async () => {
    const r = await runCli(["health", "--url", `http://127.0.0.1:${hanging.port}/readyz`]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("no answer in 2000 ms");
  });

  test("a bad --url or an extra argument is a usage error", async () => {
    for (const args of [["health", "--url", "not a url"], ["health", "--url", "file:///etc/passwd"], ["health", "extra"]]) {
      const r = await runCli(args);
      expect(r.code).toBe(2);
      expect(r.stderr).toStartWith("error: ");
    }
  });
});
