/**
 * The container image: stage the root filesystem (scripts/container-rootfs.ts), `podman build` the
 * Containerfile into a throwaway store (vfs driver, temp --root/--runroot: the machine's own store
 * is never touched), then check the image's config and run the binary from the mounted image.
 * Running containers does not work on these machines; the binary inside is the same glibc build as
 * the host's, so running it straight from the mount proves what the image holds works.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, lstatSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { BINARY_PATH, PAI_UID, stageRootfs } from "../../scripts/container-rootfs";
import { eventually, removeDir, ROOT, tempDir } from "../helpers";
import pkg from "../../package.json" with { type: "json" };

const podman = Bun.which("podman");
if (!podman) console.warn("SKIPPED test/e2e/container.test.ts: podman is not installed (Debian package podman; .ci/run installs it)");
const rootless = process.getuid?.() !== 0;

const work = tempDir("pai-container-test-");
const tag = `localhost/pai-test:${crypto.randomUUID().slice(0, 8)}`;
const store = ["--root", join(work, "storage"), "--runroot", join(work, "run"), "--storage-driver", "vfs"];
let mnt = "";
let image: any;

/** Runs podman on the temp store; rootless, inside `podman unshare` so mount works. */
function pod(args: string[]) {
  const cmd = rootless ? [podman!, "unshare", podman!, ...store, ...args] : [podman!, ...store, ...args];
  const r = Bun.spawnSync(cmd, { cwd: work, stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`${cmd.join(" ")} failed (${r.exitCode}):\n${r.stderr.toString()}${r.stdout.toString()}`);
  return r.stdout.toString();
}

describe.skipIf(!podman)("container image (podman build)", () => {
  beforeAll(async () => {
    const t0 = performance.now();
    // Same layout as the README: the context holds build/rootfs, the Containerfile's default ROOTFS.
    await stageRootfs(join(work, "ctx", "build", "rootfs"), { build: true });
    const t1 = performance.now();
    pod(["build", "--format", "docker", "-q", "-f", join(ROOT, "Containerfile"), "-t", tag, join(work, "ctx")]);
    const t2 = performance.now();
    mnt = pod(["image", "mount", tag]).trim();
    image = JSON.parse(pod(["image", "inspect", tag]))[0];
    console.log(`container test: binary built and rootfs staged in ${Math.round(t1 - t0)} ms, podman build in ${Math.round(t2 - t1)} ms`);
  }, 120_000);

  afterAll(() => {
    if (!podman) return;
    try {
      if (mnt) pod(["image", "umount", tag]);
      pod(["rmi", "-f", tag]);
    } finally {
      // The vfs store holds files of other uids; rootless, only the user namespace may delete them.
      if (rootless) Bun.spawnSync([podman, "unshare", "rm", "-rf", work]);
      removeDir(work);
    }
  });

  test("the image config: non-root user, port, volume, environment, entrypoint and health check", () => {
    expect(image.Config.User).toBe(`${PAI_UID}:${PAI_UID}`);
    expect(Object.keys(image.Config.ExposedPorts)).toEqual(["8080/tcp"]);
    expect(Object.keys(image.Config.Volumes)).toEqual(["/data"]);
    expect(image.Config.Env).toEqual(expect.arrayContaining(["PAI_DATA_DIR=/data", "PAI_HOST=0.0.0.0", "PAI_PORT=8080"]));
    expect(image.Config.Entrypoint).toEqual([BINARY_PATH]);
    expect(image.Config.Cmd).toEqual(["serve"]);
    // Docker format only: the OCI image config has no health check.
    expect(image.Healthcheck.Test).toEqual(["CMD", BINARY_PATH, "health", "--url", "http://127.0.0.1:8080/readyz"]);
  });

  test("the root filesystem: real files for the binary and its libraries, CA bundle, user, /data, /tmp", () => {
    const ldd = Bun.spawnSync(["ldd", join(mnt, BINARY_PATH)], { stdout: "pipe" }).stdout.toString();
    const libs = [...ldd.matchAll(/(\/\S+)\s+\(0x/g)].map((m) => m[1]!);
    expect(libs.some((l) => l.includes("ld-linux"))).toBe(true);
    for (const lib of [BINARY_PATH, ...libs]) {
      // The host's ldd resolves paths on the host; each must exist in the image as a plain file.
      expect(lstatSync(join(mnt, lib)).isFile()).toBe(true);
    }
    expect(readFileSync(join(mnt, "etc/ssl/certs/ca-certificates.crt"), "utf8")).toContain("BEGIN CERTIFICATE");
    expect(readFileSync(join(mnt, "etc/passwd"), "utf8")).toContain(`pai:x:${PAI_UID}:${PAI_UID}:`);
    expect(readFileSync(join(mnt, "etc/group"), "utf8")).toContain(`pai:x:${PAI_UID}:`);
    const data = statSync(join(mnt, "data"));
    expect(data.isDirectory()).toBe(true);
    if (!rootless) expect([data.uid, data.gid]).toEqual([PAI_UID, PAI_UID]);
    expect(statSync(join(mnt, "tmp")).mode & 0o7777).toBe(0o1777);
    expect(existsSync(join(mnt, "usr/bin/curl"))).toBe(false);
  });

  test("the binary in the image prints its version", async () => {
    const proc = Bun.spawn([join(mnt, BINARY_PATH), "version"], { stdout: "pipe", stderr: "pipe" });
    expect(await new Response(proc.stdout).text()).toBe(`pai ${pkg.version}\n`);
    expect(await proc.exited).toBe(0);
  });

  test("the binary in the image serves /readyz, and its health command sees it", async () => {
    const bin = join(mnt, BINARY_PATH);
    const dataDir = join(work, "data");
    const proc = Bun.spawn([bin, "serve", "--port", "0", "--host", "127.0.0.1", "--data-dir", dataDir], { cwd: work, stdin: "ignore", stdout: "ignore", stderr: "pipe" });
    let logs = "";
    const decoder = new TextDecoder();
    (async () => {
      for await (const chunk of proc.stderr) logs += decoder.decode(chunk, { stream: true });
    })();
    try {
      const port = Number(await eventually(() => /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(logs)?.[1], 10_000, `the image's pai serve to listen:\n${logs}`));
      const url = `http://127.0.0.1:${port}/readyz`;
      await eventually(async () => (await fetch(url)).status === 200, 10_000, "/readyz 200");
      expect(await (await fetch(url)).json()).toEqual({ status: "ready" });
      const health = Bun.spawnSync([bin, "health", "--url", url], { stdout: "pipe", stderr: "pipe" });
      expect(health.exitCode).toBe(0);
    } finally {
      proc.kill("SIGTERM");
      await proc.exited;
    }
  }, 30_000);
});
