/**
 * Where tool processes run. On Linux with bubblewrap (`bwrap`), every process a tool or a stdio
 * MCP server starts runs inside it: the filesystem read-only except the session's working folder
 * and a private /tmp, the data dir hidden, its own PID namespace, dying with the session, and no
 * network when `spec.sandbox.network` is false. Without bwrap, processes are refused unless the
 * operator passed --allow-unsandboxed-tools.
 */
import { accessSync, constants, lstatSync, readdirSync, readlinkSync, realpathSync, statSync } from "node:fs";
import { homedir } from "node:os";
import { join, resolve } from "node:path";
import { within } from "./tools/paths";

export interface SandboxOptions {
  /** The session's working folder: the only place a tool process may write (besides its private /tmp). */
  cwd: string;
  /** Paths the process must not see at all (the data dir). */
  hidden: string[];
  /** false: no network inside. */
  network: boolean;
  /** Run without bubblewrap when it is missing (the operator's --allow-unsandboxed-tools). */
  allowUnsandboxed: boolean;
  /**
   * Paths shown read-only although the sandbox would cover them (`--sandbox-read-only`): programs
   * or data under /tmp, say. A hidden path inside one stays hidden.
   */
  readOnly?: string[];
  /** Where to look for bwrap (default: PATH). Tests point it elsewhere. */
  bwrapPath?: string | null;
}

export interface Sandbox {
  /** `bubblewrap`, or `none` when processes run as they are (allowed by the operator). */
  readonly kind: "bubblewrap" | "none";
  /** Why no process may be started (no bwrap, unsandboxed not allowed); undefined when they may. */
  readonly refusal?: string;
  /** The argv that runs `argv` inside the sandbox, in `cwd`. */
  wrap(argv: string[]): string[];
}

export const BWRAP_MISSING =
  "commands are refused: bubblewrap (bwrap) is not installed, so they would run unsandboxed; install it (apt-get install bubblewrap) or start pai serve with --allow-unsandboxed-tools";

/**
 * Credentials that commonly sit in the home folder of the user running `pai serve`. The root
 * filesystem is readable inside the sandbox (so toolchains work), so these are covered like the
 * data dir: an agent steered by a webhook payload must not read the operator's SSH keys or cloud
 * and cluster credentials (a root server's own 0600 files stay readable to root without caps).
 */
const HOME_CREDENTIALS = [
  ".ssh", ".gnupg", ".aws", ".azure", ".kube", ".docker", ".config/gcloud", ".config/gh", ".config/pai",
  ".netrc", ".git-credentials", ".npmrc", ".pypirc", ".pgpass",
];

/** The bwrap to use: an executable file at `path` (or on PATH), or null (also on non-Linux, where there is none). */
function findBwrap(path: string | null | undefined): string | null {
  if (process.platform !== "linux" || path === null) return null;
  const candidate = path ?? Bun.which("bwrap");
  if (!candidate) return null;
  try {
    accessSync(candidate, constants.X_OK);
    return statSync(candidate).isFile() ? candidate : null;
  } catch {
    return null;
  }
}

/** The real path of `p`, or null when nothing is there. */
function real(p: string): string | null {
  try {
    return realpathSync(p);
  } catch {
    return null;
  }
}


/**
 * The bwrap options that cover the real path `r`: an empty tmpfs over a folder, /dev/null over a
 * file. Real paths are used since a mount covers the real place whatever symlink leads to it;
 * paths that do not exist need nothing (bwrap could not make a mount point on the read-only root).
 */
function cover(r: string): string[] {
  if (r === "/") return [];
  try {
    return statSync(r).isDirectory() ? ["--tmpfs", r] : ["--ro-bind", "/dev/null", r];
  } catch {
    return [];
  }
}

/** A real folder (not a symlink to one) at `p`. */
function isRealDir(p: string): boolean {
  try {
    return lstatSync(p).isDirectory();
  } catch {
    return false;
  }
}

export function createSandbox(opts: SandboxOptions): Sandbox {
  const bwrap = findBwrap(opts.bwrapPath);
  if (!bwrap) {
    if (opts.allowUnsandboxed) return { kind: "none", wrap: (argv) => argv };
    return {
      kind: "none",
      refusal: BWRAP_MISSING,
      wrap() {
        // Nobody gets an unsandboxed argv by forgetting to check `refusal`.
        throw new Error(BWRAP_MISSING);
      },
    };
  }
  const cwd = real(opts.cwd) ?? resolve(opts.cwd);
  const args = [bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"];
  if (isRealDir("/var/tmp")) args.push("--tmpfs", "/var/tmp");
  // /run holds sockets (docker, dbus, ssh and gpg agents) that a read-only mount does not stop a
  // process from connecting to. resolv.conf often lives there; put it back so DNS keeps working.
  // Symlinks directly in /run are kept (NixOS puts every program behind /run/current-system).
  if (isRealDir("/run")) {
    args.push("--tmpfs", "/run");
    try {
      for (const e of readdirSync("/run", { withFileTypes: true }))
        if (e.isSymbolicLink()) args.push("--symlink", readlinkSync(join("/run", e.name)), join("/run", e.name));
    } catch {
      // Unreadable: /run stays empty.
    }
    const resolv = real("/etc/resolv.conf");
    if (resolv && within(resolv, "/run")) args.push("--ro-bind", resolv, resolv);
  }
  if (isRealDir("/var/run")) args.push("--tmpfs", "/var/run");
  // The operator's read-only paths come back after the covers above, and before the hidden ones,
  // which win: a data dir inside one of them is still not there.
  for (const p of opts.readOnly ?? []) {
    const r = real(p);
    if (r && r !== "/") args.push("--ro-bind", r, r);
  }
  // A hidden path that holds the working folder is covered before the folder is bound back in;
  // one inside the working folder after, or the bind (which takes the host's view) would reveal it.
  const hidden = new Set<string>();
  const homes = new Set([homedir(), process.env.HOME].filter((h): h is string => !!h));
  for (const h of [...opts.hidden, ...[...homes].flatMap((home) => HOME_CREDENTIALS.map((c) => join(home, c)))]) {
    const r = real(h);
    if (r) hidden.add(r);
  }
  const after: string[] = [];
  for (const h of hidden) {
    if (within(cwd, h)) args.push(...cover(h));
    else after.push(...cover(h));
  }
  args.push("--bind", cwd, cwd, ...after);
  args.push("--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try");
  if (!opts.network) args.push("--unshare-net");
  // Run as root, bwrap keeps every capability unless told otherwise (enough to remount / read-write).
  if (process.getuid?.() === 0) args.push("--cap-drop", "ALL");
  args.push("--die-with-parent", "--new-session", "--chdir", cwd, "--");
  return { kind: "bubblewrap", wrap: (argv) => [...args, ...argv] };
}
