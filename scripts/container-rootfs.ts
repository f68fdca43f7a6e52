/**
 * Stages the root filesystem of the container image (Containerfile, `FROM scratch`) into a folder:
 * `bun scripts/container-rootfs.ts build/rootfs`. No base image is pulled: the image holds the
 * compiled binary, the loader and the shared libraries it links (copied from this machine, so the
 * image matches the glibc the binary was built against), the CA bundle for HTTPS model APIs, a
 * non-root user `pai` (uid 10001) and a world-writable /tmp. No /data here: COPY gives every file
 * uid 0, so the Containerfile makes /data itself, owned by 10001, with COPY --chown.
 */
import { chmodSync, copyFileSync, existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { buildBinary, ROOT } from "../build";

export const PAI_UID = 10001;
export const BINARY_PATH = "/usr/local/bin/pai";
const CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt";

/** The absolute paths `ldd` lists for `bin`: the loader and each shared library (not the vDSO). */
export function sharedLibraries(bin: string): string[] {
  const out = Bun.spawnSync(["ldd", bin], { stdout: "pipe", stderr: "pipe" });
  if (out.exitCode !== 0) throw new Error(`ldd ${bin} failed: ${out.stderr.toString().trim()}`);
  const paths = new Set<string>();
  for (const line of out.stdout.toString().split("\n")) {
    // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x…)" or "/lib64/ld-linux-x86-64.so.2 (0x…)"
    const m = /(?:=>\s*)?(\/\S+)\s+\(0x[0-9a-f]+\)/.exec(line);
    if (m) paths.add(m[1]!);
    else if (/=>\s*not found/.test(line)) throw new Error(`ldd ${bin}: ${line.trim()}`);
  }
  if (![...paths].some((p) => /ld-linux|ld-musl/.test(p))) throw new Error(`ldd ${bin} listed no dynamic loader`);
  return [...paths];
}

/** Copies `from` (following symlinks: the image gets real files) to `to` under `root`. */
function copyInto(root: string, from: string, to = from, mode?: number) {
  const dest = join(root, to);
  mkdirSync(dirname(dest), { recursive: true });
  copyFileSync(from, dest);
  if (mode !== undefined) chmodSync(dest, mode);
}

export async function stageRootfs(outDir: string, opts: { binary?: string; build?: boolean } = {}): Promise<{ root: string; libraries: string[] }> {
  const root = resolve(outDir);
  let bin = opts.binary ?? join(ROOT, "dist", "pai");
  if (opts.build || !existsSync(bin)) bin = (await buildBinary()).outfile;
  rmSync(root, { recursive: true, force: true });
  mkdirSync(root, { recursive: true });
  copyInto(root, bin, BINARY_PATH, 0o755);
  const libraries = sharedLibraries(bin);
  for (const lib of libraries) copyInto(root, lib, lib, 0o755);
  if (!existsSync(CA_BUNDLE)) throw new Error(`${CA_BUNDLE} is missing (Debian package ca-certificates): the image could not reach HTTPS model APIs`);
  copyInto(root, CA_BUNDLE, CA_BUNDLE, 0o644);
  mkdirSync(join(root, "etc"), { recursive: true });
  writeFileSync(join(root, "etc/passwd"), `root:x:0:0:root:/root:/sbin/nologin\npai:x:${PAI_UID}:${PAI_UID}:pai:/data:/sbin/nologin\n`, { mode: 0o644 });
  writeFileSync(join(root, "etc/group"), `root:x:0:\npai:x:${PAI_UID}:\n`, { mode: 0o644 });
  // mkdir's mode passes through the umask; chmod sets the bits exactly (1777: sticky, like any /tmp).
  mkdirSync(join(root, "tmp"));
  chmodSync(join(root, "tmp"), 0o1777);
  return { root, libraries };
}

if (import.meta.main) {
  const out = process.argv[2];
  if (!out) {
    console.error("usage: bun scripts/container-rootfs.ts OUT_DIR   (then: podman build --format docker -t pai .)");
    process.exit(2);
  }
  const { root, libraries } = await stageRootfs(out, { build: process.argv.includes("--build") });
  console.log(`staged ${root}: ${BINARY_PATH}, ${libraries.length} libraries (${libraries.join(", ")}), CA bundle, user pai (${PAI_UID}), /tmp`);
}
