/**
 * The manifests folder as a source of Agents. Every *.yaml / *.yml file (one or many documents) is
 * applied at start and whenever it is created, changed or deleted; deleting a file deletes the agents
 * it defined. A document that fails to parse or validate is reported with file:line and the agent's
 * previous good version keeps running. When the controller changes an agent's status, the status is
 * written back into its document (comments and layout kept); that write is recognised by its hash
 * and does not trigger another apply. The write-back replaces the file through a fresh temp file
 * (random name, O_EXCL|O_NOFOLLOW) with the file's own mode and owner, and only ever a regular
 * file: the status holds the webhook URL, a credential, so it must not become readable by more
 * people, nor be written through a symlink someone planted.
 */
import { readdirSync, readFileSync, existsSync, renameSync, watch, statSync, lstatSync, openSync, writeSync, fsyncSync, fchmodSync, fchownSync, closeSync, unlinkSync, constants, type FSWatcher } from "node:fs";
import { basename, dirname, join, relative, resolve } from "node:path";
import { createHash, randomBytes } from "node:crypto";
import { loadManifests } from "../../domain/manifest";
import { stringifyYamlFile } from "../../lib/yaml";
import { deepEqual } from "../../lib/json";
import type { Logger } from "../../lib/log";
import type { AgentService } from "../../service/agents";
import type { Change, Topics } from "../../service/topics";

const isManifest = (f: string) => /\.ya?ml$/i.test(f);
const hash = (s: string) => createHash("sha256").update(s).digest("hex");
/** A path as the user will recognise it: relative to the working folder when inside it. */
const shownPath = (p: string) => {
  const r = relative(process.cwd(), p);
  return r && !r.startsWith("..") ? r : p;
};

/**
 * Replaces the regular file at `path` with `text` in one rename, keeping its permission bits and
 * (where we may) its owner. The temp file gets a random name in the same folder and is created
 * with O_EXCL|O_NOFOLLOW, so nothing planted in advance (a symlink at a guessable name) is written
 * through; the rename replaces whatever is at `path` itself, never a symlink's target.
 */
export function replaceFileContents(path: string, text: string) {
  const st = lstatSync(path);
  if (!st.isFile()) throw new Error(`${path} is not a regular file`);
  const mode = st.mode & 0o777;
  const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(8).toString("hex")}.pai-tmp`);
  // The umask may narrow `mode` at creation; fchmod then sets it exactly. Never wider than the original.
  const fd = openSync(tmp, constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY | (constants.O_NOFOLLOW ?? 0), mode);
  try {
    try {
      fchmodSync(fd, mode);
      // A server run as root editing a user's manifest must leave it theirs.
      if (st.uid !== process.getuid?.() || st.gid !== process.getgid?.()) fchownSync(fd, st.uid, st.gid);
    } catch {
      // Not allowed to give it away: the file stays ours, with the same (or a narrower) mode.
    }
    writeSync(fd, text);
    fsyncSync(fd);
  } catch (err) {
    closeSync(fd);
    unlinkSync(tmp);
    throw err;
  }
  closeSync(fd);
  try {
    renameSync(tmp, path);
  } catch (err) {
    unlinkSync(tmp);
    throw err;
  }
}

export interface FileSourceDeps {
  dir: string;
  agents: AgentService;
  topics: Pick<Topics, "changes">;
  log: Logger;
  defaultNamespace: string;
  /** Write status back into the documents (default true). */
  writeStatus?: boolean;
  pollMs?: number;
}

export function createFileSource(deps: FileSourceDeps) {
  const dir = resolve(deps.dir);
  const { agents, log } = deps;
  const sourceOf = (path: string) => `file:${path}`;
  /** Content hash of each file as last applied or written by us. */
  const seen = new Map<string, string>();
  /** Last error text per file, so a broken file is reported once, not on every poll. */
  const reported = new Map<string, string>();
  const pendingWrites = new Set<string>();
  /** Files whose status is not written back (not regular files), each said once. */
  const skippedWrites = new Set<string>();
  let watcher: FSWatcher | undefined;
  let poll: ReturnType<typeof setInterval> | undefined;
  let scanTimer: ReturnType<typeof setTimeout> | undefined;
  let writeTimer: ReturnType<typeof setTimeout> | undefined;

  function listFiles(): string[] {
    if (!existsSync(dir)) return [];
    return (readdirSync(dir, { recursive: true }) as string[])
      .filter(isManifest)
      .map((f) => join(dir, f))
      .filter((f) => {
        try {
          return statSync(f).isFile();
        } catch {
          return false;
        }
      })
      .sort();
  }

  async function applyFile(path: string, text: string) {
    const shown = shownPath(path);
    const loaded = loadManifests(text, shown, deps.defaultNamespace);
    const source = sourceOf(path);
    const keys = new Set<string>();
    for (const { input } of loaded.agents) {
      keys.add(`${input.namespace}/${input.name}`);
      try {
        const r = await agents.apply(input, source);
        if (r.changed) log.info(r.created ? "agent created" : "agent updated", { agent: `${input.namespace}/${input.name}`, file: shown });
      } catch (err) {
        loaded.errors.push({ text: `${shown}: failed to apply agent ${input.name}: ${(err as Error).message}` });
      }
    }
    // Failure is data: an agent this file defined before carries the reason its edit was refused.
    const refused = new Map<string, { namespace: string; name: string; texts: string[] }>();
    for (const e of loaded.errors) {
      if (!e.name || !e.namespace) continue;
      const k = `${e.namespace}/${e.name}`;
      const entry = refused.get(k) ?? { namespace: e.namespace, name: e.name, texts: [] };
      entry.texts.push(e.text);
      refused.set(k, entry);
    }
    for (const { namespace, name, texts } of refused.values())
      if (agents.find(namespace, name)?.source === source) agents.setSourceProblem(namespace, name, texts.join("; "));
    for (const { input } of loaded.agents) agents.setSourceProblem(input.namespace, input.name, null);
    const errorText = loaded.errors.map((e) => e.text).join("\n");
    if (errorText && reported.get(path) !== errorText) {
      for (const e of loaded.errors) log.error(`invalid manifest ${e.text}`);
    }
    if (errorText) reported.set(path, errorText);
    else reported.delete(path);
    // A broken document may be an agent we can no longer name: delete nothing until the file is clean.
    if (loaded.errors.length === 0) {
      for (const { agent } of agents.listBySource(source)) {
        const k = `${agent.metadata.namespace}/${agent.metadata.name}`;
        if (!keys.has(k)) {
          await agents.remove(agent.metadata.namespace, agent.metadata.name);
          log.info("agent deleted", { agent: k, file: shown });
        }
      }
    }
    return loaded.errors;
  }

  async function removeFile(path: string) {
    for (const { agent } of agents.listBySource(sourceOf(path))) {
      await agents.remove(agent.metadata.namespace, agent.metadata.name);
      log.info("agent deleted", { agent: `${agent.metadata.namespace}/${agent.metadata.name}`, file: shownPath(path) });
    }
    seen.delete(path);
    reported.delete(path);
  }

  /** Applies every new or changed file and removes agents of files that are gone. */
  async function scanOnce() {
    const files = listFiles();
    const present = new Set(files);
    for (const path of files) {
      let text: string;
      try {
        text = readFileSync(path, "utf8");
      } catch {
        continue;
      }
      const h = hash(text);
      if (seen.get(path) === h) continue;
      seen.set(path, h);
      await applyFile(path, text);
    }
    for (const { source } of agents.listBySource(`file:${dir}/`, true)) {
      const path = source.slice("file:".length);
      if (!present.has(path)) await removeFile(path);
    }
  }

  /** One scan at a time (writes may be promises): a scan asked for meanwhile runs after it. */
  let scanning: Promise<void> | undefined;
  let rescan = false;
  function scan(): Promise<void> {
    if (scanning) {
      rescan = true;
      return scanning;
    }
    scanning = scanOnce().finally(() => {
      scanning = undefined;
      if (rescan) {
        rescan = false;
        void scan().catch((err) => log.error("failed to scan manifests", { dir, error: (err as Error).message }));
      }
    });
    return scanning;
  }

  function scheduleScan(delay = 50) {
    clearTimeout(scanTimer);
    scanTimer = setTimeout(() => {
      scan().catch((err) => log.error("failed to scan manifests", { dir, error: (err as Error).message }));
    }, delay);
  }

  /** Writes the current status of each agent into its document, if the file is still as we applied it. */
  function writeBack(path: string) {
    let text: string;
    try {
      // A symlinked manifest is applied like any other, but its status is not written: replacing
      // the link would break it, and writing through it would let the link choose what we write.
      if (!lstatSync(path).isFile()) {
        if (!skippedWrites.has(path)) log.info("manifest is not a regular file (a symlink?); its status is not written back, see pai get agent-def", { file: shownPath(path) });
        skippedWrites.add(path);
        return;
      }
      text = readFileSync(path, "utf8");
    } catch {
      return;
    }
    // The user changed the file since we applied it: apply that first; status follows.
    if (seen.get(path) !== hash(text)) return scheduleScan(0);
    const loaded = loadManifests(text, shownPath(path), deps.defaultNamespace);
    let changed = false;
    for (const { input, docIndex } of loaded.agents) {
      const found = agents.find(input.namespace, input.name);
      if (!found || found.source !== sourceOf(path)) continue;
      const doc = loaded.file.docs[docIndex]!.doc;
      const current = doc.get("status") ? (doc.toJS() as { status?: unknown }).status : undefined;
      if (deepEqual(current ?? null, found.agent.status)) continue;
      doc.set("status", doc.createNode(found.agent.status));
      changed = true;
    }
    if (!changed) return;
    const next = stringifyYamlFile(loaded.file);
    replaceFileContents(path, next);
    seen.set(path, hash(next));
  }

  function onStatus({ namespace, name }: Change) {
    if (deps.writeStatus === false) return;
    const found = agents.find(namespace, name);
    if (!found?.source.startsWith(`file:${dir}/`)) return;
    pendingWrites.add(found.source.slice("file:".length));
    clearTimeout(writeTimer);
    writeTimer = setTimeout(() => {
      const paths = [...pendingWrites];
      pendingWrites.clear();
      for (const p of paths) {
        try {
          writeBack(p);
        } catch (err) {
          log.error("failed to write status to manifest", { file: p, error: (err as Error).message });
        }
      }
    }, 20);
  }

  let offStatus: (() => void) | undefined;

  return {
    dir,
    /** Applies the folder once, then watches it. */
    async start() {
      await scan();
      offStatus = deps.topics.changes.subscribeKey("agentStatus", onStatus);
      try {
        watcher = watch(dir, { recursive: true }, (_event, file) => {
          if (!file || isManifest(String(file))) scheduleScan();
        });
      } catch (err) {
        log.warn("cannot watch manifests folder; polling only", { dir, error: (err as Error).message });
      }
      // fs events can be missed (editors, network filesystems): a slow poll catches up.
      poll = setInterval(() => scheduleScan(0), deps.pollMs ?? 2000);
      poll.unref();
    },
    stop() {
      watcher?.close();
      clearInterval(poll);
      clearTimeout(scanTimer);
      clearTimeout(writeTimer);
      offStatus?.();
    },
    scan,
  };
}
