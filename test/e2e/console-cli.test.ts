/**
 * How a user finds the console: `pai serve` says where it is when it starts, and `pai console`
 * prints (on a desktop, opens) its address, never with a token in it.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { removeDir, runCli, startServer, type TestServer } from "../helpers";

let server: TestServer;
beforeAll(async () => {
  server = await startServer();
});
afterAll(async () => {
  await server?.stop();
  removeDir(server?.dataDir ?? "");
});

describe("finding the console", () => {
  test("pai serve logs the console's address and where the admin token is, not the token", () => {
    const line = server.logs().split("\n").find((l) => l.includes("web console:"))!;
    expect(line).toContain(`${server.url}/console`);
    expect(line).toContain("admin-token");
    expect(server.logs()).not.toContain(server.token);
  });

  test("pai console prints the address (no token in it) and how to sign in; no desktop, so nothing is opened", async () => {
    const r = await server.cli(["console"], { env: { DISPLAY: "", WAYLAND_DISPLAY: "" } });
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe(`${server.url}/console`);
    expect(r.stdout + r.stderr).not.toContain(server.token);
    expect(r.stderr).toContain("Sign in with an access token");
  });

  test("pai console with no server there fails with what to do", async () => {
    const r = await runCli(["console", "--server", "http://127.0.0.1:9"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("start one with pai serve");
  });

  test("pai console takes no arguments", async () => {
    const r = await server.cli(["console", "extra"]);
    expect(r.code).toBe(2);
  });
});
