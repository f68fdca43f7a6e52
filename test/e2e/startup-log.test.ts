/** The start-up log says where the server can be reached: all interfaces when it binds them all. */
import { afterAll, expect, test } from "bun:test";
import { MAIN, ROOT, removeDir, tempDir } from "../helpers";

const dirs: string[] = [];
afterAll(() => dirs.forEach(removeDir));

async function firstListeningLine(host: string): Promise<string> {
  const dataDir = tempDir("pai-data-");
  dirs.push(dataDir);
  const proc = Bun.spawn([process.execPath, MAIN, "serve", "--port", "0", "--host", host, "--data-dir", dataDir], { cwd: ROOT, stdin: "ignore", stdout: "ignore", stderr: "pipe" });
  let logs = "";
  const decoder = new TextDecoder();
  try {
    for await (const chunk of proc.stderr) {
      logs += decoder.decode(chunk, { stream: true });
      const line = logs.split("\n").find((l) => l.includes("listening on"));
      if (line) return line;
    }
    throw new Error(`the server exited before listening:\n${logs}`);
  } finally {
    proc.kill("SIGTERM");
    await proc.exited;
  }
}

test("bound to 0.0.0.0, the log says all interfaces (and the loopback URL for this machine)", async () => {
  const line = await firstListeningLine("0.0.0.0");
  expect(line).toMatch(/listening on all interfaces \(0\.0\.0\.0\), port \d+; from this machine: http:\/\/127\.0\.0\.1:\d+/);
});

test("bound to loopback, the log gives that one URL", async () => {
  const line = await firstListeningLine("127.0.0.1");
  expect(line).toMatch(/listening on http:\/\/127\.0\.0\.1:\d+/);
  expect(line).not.toContain("all interfaces");
});
