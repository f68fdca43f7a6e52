/**
 * "Keep every README example true": the README's shell examples, read from README.md when the test
 * runs, are run the way a new user runs them (one bash session, in order, so URL and TOKEN carry
 * over), against a server started as `npm start` starts it, and each command's output is compared
 * with what the README shows for it: the `# …` comment after it, or the lines after a `$ command`.
 *
 * How the README's examples map onto this test's machine:
 * - The server is package.json's `start` script (`bun src/main.ts serve …`) plus
 *   `--port 0 --host 127.0.0.1 --data-dir <work>/.pai`; HOME is a temp folder, so the server
 *   registers itself in a context file of its own. The commands run in <work>, "in the same
 *   folder" as the Quick start says, and the CLI finds the server through ./.pai.
 * - `npx pai …` runs package.json's bin (bin/pai.cjs) with node, as npm's npx does in the repo; the
 *   `npx` on PATH is a shim that runs nothing else, so nothing is fetched.
 * - A bare `pai …` at the start of a command is run as `npx pai …` (the CLI section: "After
 *   npm install, run it as `npx pai …`").
 * - `http://localhost:8080` is the real server's public URL, `http://localhost:<port>`.
 * - A session name in a command (`my-agent-run-1a2b3c4d`) is the newest real session of that
 *   agent and kind printed by an earlier example; `<session>` is the newest `echo` session (the
 *   README's answer for it says `"agentDefinition":"echo"`).
 * - `$LINEAR_SIGNING_SECRET` is set to a made-up value.
 * - The Webhooks examples use `$URL`, and the answers they show are my-agent's: before them, URL is
 *   set to my-agent's URL by the Quick start's own `URL=$(…)` line with `echo` → `my-agent`.
 * - The transcript `$ pai apply -f agent.yaml` runs on agent.yaml = the README's Agent YAML (the
 *   first one) with its first model replaced by the one the error message names.
 * - curl runs with `-sS` and reports its HTTP status on stderr (a shell function), for the checks.
 *
 * Shown output is compared by shape: in JSON `"…"` is any string and `,…}` allows more members;
 * session names match any name of the same agent and kind (`<agent>-wh-<8 hex>`); `<token>` is 64
 * hex; the reply of an agent other than echo is any string (a model's answer). A comment in words
 * must be one PROSE knows, so a new kind of promise gets a check. A shell block that is neither in
 * RUN nor in SKIP fails the test, so a new example gets run.
 *
 * README_UNDER_TEST=path runs the examples of another copy of the README (to try an edit first).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { loadServeConfig } from "../../src/config/serve";
import { join } from "node:path";
import { removeDir, ROOT, startServer, tempDir, type TestServer } from "../helpers";
import { examplesOf, expectationOf, fencedBlocks, isShellExample, linePattern, matchJson, readJsonPattern, SESSION_NAME, Shell, type Block, type Example, type Ran } from "../readme/readme";

const README = process.env.README_UNDER_TEST ?? join(ROOT, "README.md");
const markdown = readFileSync(README, "utf8");
const allBlocks = fencedBlocks(markdown);
const shellBlocks = allBlocks.filter(isShellExample);
const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8"));

/** What the examples share as they run. */
interface State {
  server: TestServer;
  work: string;
  publicUrl: string;
  /** Sessions seen in the output so far: agent → kind → highest counter's name. */
  sessions: Map<string, { name: string; kind: string; n: number }[]>;
  /** The webhook URL an agent had before its token was rotated. */
  oldUrl?: string;
  myAgentGeneration?: number;
}

interface RunBlock {
  heading: string;
  /** Matches the block's first command as the README writes it. */
  first: RegExp;
  /** Done before the block's first command, invisibly to the output checks. */
  prepare?: (st: State, shell: Shell, block: Block) => Promise<void>;
}

interface SkipBlock {
  heading: string;
  first: RegExp;
  why: string;
}

/** The shell examples this test runs, in README order. */
const RUN: RunBlock[] = [
  { heading: "Quick start", first: /^npx pai get agent-defs/ },
  {
    heading: "The CLI",
    first: /^npx pai apply -f agent\.yaml$/,
    async prepare(st, _shell, block) {
      // agent.yaml: the README's Agent YAML with the model that the shown error names.
      const model = /unknown model "([^"]+)"/.exec(examplesOf(block)[0]!.shown ?? "")?.[1];
      if (!model) throw new Error(`README.md:${block.line}: the example no longer shows an "unknown model" error; say in this test which agent.yaml it runs on`);
      const agent = allBlocks.find((b) => b.lang === "yaml" && b.body.some((l) => l === "kind: Agent"));
      if (!agent) throw new Error("README.md has no Agent YAML block to build agent.yaml from");
      const yaml = agent.body.join("\n").replace(/^(\s*-\s+)[a-z]+\/\S+$/m, `$1${model}`) + "\n";
      writeFileSync(join(st.work, "agent.yaml"), yaml);
    },
  },
  { heading: "Sessions", first: /^npx pai run echo / },
  { heading: "Reading a session", first: /^TOKEN=\$\(npx pai create token/ },
  { heading: "Fire-and-forget (default)", first: /^URL=\$\(npx pai get agent-def my-agent / },
  { heading: 'Synchronous ("lambda") mode', first: /^curl -X POST "\$URL"/ },
  {
    heading: "Linear",
    first: /^npx pai create secret linear /,
    async prepare(_st, shell) {
      await shell.run("export LINEAR_SIGNING_SECRET=readme-test-signing-secret", 5_000);
    },
  },
  { heading: "Callbacks", first: /^npx pai get secret pai-webhook-my-agent -o json \| node / },
  { heading: "Rotating the token", first: /^npx pai delete secret pai-webhook-my-agent/ },
];

/** The shell examples this test does not run, and why. */
const SKIP: SkipBlock[] = [
  {
    heading: "Quick start",
    first: /^npm install && npm start/,
    why: "npm install needs the network, npm start would serve on 8080 with ./.pai in the shared repo, npm test would run this test again; the test starts the server with package.json's start script instead",
  },
  {
    heading: "Build the binary",
    first: /^npm run build/,
    why: "building writes dist/pai in the shared repo and takes seconds, and ./dist/pai serve listens on 0.0.0.0:8080; test/build.test.ts builds and serves the binary",
  },
];

/**
 * What can be checked of a command this test does not run: the npm scripts it names exist, the
 * files it copies exist, and `pai serve` flags are ones the server takes.
 */
function staticProblems(command: string): string[] {
  const problems: string[] = [];
  const scripts = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")).scripts as Record<string, string>;
  for (const part of command.split(/&&|;|\n/).map((p) => p.replace(/#.*$/, "").trim()).filter(Boolean)) {
    const npm = /^npm (?:run )?(\S+)/.exec(part);
    if (npm && npm[1] !== "install" && !scripts[npm[1]!]) problems.push(`package.json has no script "${npm[1]}"`);
    for (const file of /^cp (.+) \S+$/.exec(part)?.[1]!.split(/\s+/) ?? [])
      if (!existsSync(join(ROOT, file))) problems.push(`${file} does not exist`);
    const serve = /^\S*pai serve (.*)$/.exec(part);
    if (serve) {
      try {
        loadServeConfig(serve[1]!.split(/\s+/), {});
      } catch (err) {
        problems.push(`pai serve ${serve[1]}: ${(err as Error).message}`);
      }
    }
  }
  return problems;
}

/** Checks for claims the README makes in words beside a command's output. */
const PROSE: { says: RegExp; check: (r: Ran, ex: Example, cmd: string, st: State) => Promise<string[]> | string[] }[] = [
  // `prints "…"`: the quoted line is checked as a line of output.
  { says: /^prints$/, check: () => [] },
  {
    // pai cancel: works while the session runs, and says so once it has ended.
    says: /^while Pending or Running; once it ended: error: session "…" already finished \(Complete\)$/,
    check: (r) =>
      (r.code === 0 && /cancelled/.test(r.stdout)) || (r.code === 1 && /^error: session "[^"]+" already finished \(Complete\)\n$/.test(r.stderr))
        ? []
        : [`neither cancelled nor "already finished": exit ${r.code}, ${JSON.stringify(r.stdout + r.stderr)}`],
  },
  // The Linear example's comment names where the value comes from.
  { says: /^the secret Linear shows$/, check: () => [] },
  {
    says: /^HTTP (\d{3}) at once$/,
    check: (r, ex) => {
      const status = Number(/^HTTP (\d{3})/.exec(expectationOf(ex).prose!)![1]);
      const problems: string[] = [];
      if (r.http.join() !== String(status)) problems.push(`HTTP status ${r.http.join()}, the README says ${status}`);
      if (r.ms > 2000) problems.push(`answered after ${Math.round(r.ms)} ms, the README says at once`);
      return problems;
    },
  },
  {
    says: /^follows the session, prints the reply$/,
    check: (r, _ex, cmd) => {
      const m = /\brun (\S+) "([^"]*)"/.exec(cmd);
      if (!m) return [`cannot tell the agent and prompt of ${cmd}`];
      const lines = r.stdout.trimEnd().split("\n");
      const problems: string[] = [];
      // pai/echo replies with the prompt; another agent's reply is whatever its model says.
      if (m[1] === "echo" ? !lines.includes(m[2]!) : !lines.some((l) => l && !l.startsWith("["))) problems.push(`no reply in the output`);
      if (!/^\[closed\] Complete$/.test(lines[lines.length - 1]!)) problems.push(`does not end with the session's end ([closed] Complete)`);
      return problems;
    },
  },
  {
    // Rotating the token: "a new one is made at once and the old URL answers 401".
    says: /^new Webhook URL$/,
    async check(r, _ex, _cmd, st) {
      const now = /^Webhook URL (\S+)$/m.exec(r.stdout)?.[1];
      const problems: string[] = [];
      if (!now || !now.startsWith("http")) return [`no Webhook URL right after the rotation: ${JSON.stringify(r.stdout)}`];
      if (!st.oldUrl) return ["the test did not record the URL before the rotation"];
      if (now === st.oldUrl) problems.push(`the Webhook URL did not change: ${now}`);
      const local = (u: string) => u.replace(st.publicUrl, st.server.url);
      const old = await fetch(local(st.oldUrl), { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
      if (old.status !== 401) problems.push(`the old URL answers ${old.status}, the README says 401`);
      const ping = await fetch(local(now));
      if (ping.status !== 200) problems.push(`the new URL's verification GET answers ${ping.status}`);
      return problems;
    },
  },
];

/** More checks for single examples, from what the README says around them. */
const EXTRA: {
  command: RegExp;
  why: string;
  before?: (st: State) => Promise<void>;
  check?: (r: Ran, st: State) => Promise<string[]> | string[];
  /** A failure that is expected here, and why it is not the README's fault. */
  mayFail?: RegExp;
}[] = [
  {
    command: /^npx pai apply -f agent\.yaml$/,
    why: 'The CLI: "Bad input is refused …, and nothing from that file is applied"',
    async before(st) {
      st.myAgentGeneration = (await (await st.server.api("/apis/pai.io/v1/namespaces/default/agents/my-agent")).json()).metadata.generation;
    },
    async check(_r, st) {
      const gen = (await (await st.server.api("/apis/pai.io/v1/namespaces/default/agents/my-agent")).json()).metadata.generation;
      return gen === st.myAgentGeneration ? [] : [`my-agent changed (generation ${st.myAgentGeneration} → ${gen})`];
    },
  },
  {
    command: /^npx pai cancel /,
    why: "the example before it follows the session to its end (`pai logs -f`), so it can no longer be cancelled",
    mayFail: /^error: session "[^"]+" already finished \(Complete\)\n$/,
  },
  {
    command: /^curl -N .*\/stream\?/,
    why: 'Reading a session: "Stored events first, then live ones, each with id:"; "The stream ends right after session.status_closed"',
    check: (r) => {
      const ids = [...r.stdout.matchAll(/^id: (\d+)$/gm)].map((m) => Number(m[1]));
      const data = [...r.stdout.matchAll(/^data: (.*)$/gm)].map((m) => JSON.parse(m[1]!) as { type: string });
      const problems: string[] = [];
      if (ids.join() !== data.map((_, i) => i + 1).join()) problems.push(`event ids ${ids.join()} for ${data.length} events`);
      if (data[data.length - 1]?.type !== "session.status_closed") problems.push(`the stream did not end with session.status_closed: ${JSON.stringify(r.stdout)}`);
      return problems;
    },
  },
  {
    command: /^npx pai create secret (\S+) --from-literal /,
    why: "The CLI table: `pai create secret NAME --from-literal KEY=VALUE` … (`secret/NAME created`)",
    check: (r) => (r.stdout === "secret/linear created\n" ? [] : [`printed ${JSON.stringify(r.stdout)}, the CLI table says secret/linear created`]),
  },
  {
    command: /^npx pai get secret pai-webhook-my-agent -o json \| node .*callbackSecret/,
    why: "Callbacks: the agent's `callbackSecret`, a `whsec_…` key kept in its `pai-webhook-<agent>` Secret",
    check: (r) => (/^whsec_[A-Za-z0-9+/]{20,}={0,2}\n$/.test(r.stdout) ? [] : [`printed ${JSON.stringify(r.stdout)}, not a whsec_… key`]),
  },
  {
    command: /^npx pai delete secret pai-webhook-my-agent /,
    why: "Rotating the token: remember the URL before, to compare after",
    async before(st) {
      st.oldUrl = (await (await st.server.api("/apis/pai.io/v1/namespaces/default/agents/my-agent")).json()).status.webhookUrl;
    },
  },
];

function classify(block: Block): RunBlock | SkipBlock | undefined {
  const first = examplesOf(block)[0]?.command ?? "";
  return [...RUN, ...SKIP].find((c) => c.heading === block.heading && c.first.test(first));
}

/** The command to run for a README command, with the substitutions the header lists. */
function substitute(command: string, st: State): string {
  let c = command.replace(/^pai /, "npx pai ").replaceAll("http://localhost:8080", st.publicUrl);
  const newest = (agent: string, kind?: string) => {
    const seen = (st.sessions.get(agent) ?? []).filter((s) => !kind || s.kind === kind).sort((a, b) => b.n - a.n)[0];
    if (!seen) throw new Error(`the README refers to a ${agent} session${kind ? ` started by ${kind === "wh" ? "a webhook" : "pai run"}` : ""}, but no example before it printed one`);
    return seen.name;
  };
  c = c.replace(SESSION_NAME, (_, agent: string, kind: string) => newest(agent, kind));
  c = c.replaceAll("<session>", () => newest("echo"));
  const left = /<[A-Za-z][^<>\n]*>/.exec(c);
  if (left) throw new Error(`unknown placeholder ${left[0]} in ${command}: say in this test what it stands for`);
  return c;
}

function remember(st: State, text: string) {
  for (const m of text.matchAll(SESSION_NAME)) {
    const [name, agent, kind, hex] = m as unknown as [string, string, string, string];
    const list = st.sessions.get(agent) ?? [];
    if (!list.some((s) => s.name === name)) list.push({ name, kind, n: parseInt(hex, 16) });
    st.sessions.set(agent, list);
  }
}

/** Everything that differs between what the README shows for `ex` and what running it did. */
async function differences(ex: Example, cmd: string, r: Ran, st: State): Promise<string[]> {
  const exp = expectationOf(ex);
  const extras = EXTRA.filter((e) => e.command.test(ex.command));
  const problems: string[] = [];
  const w = { publicUrl: st.publicUrl };
  const wantsError = exp.lines?.[0]?.startsWith("error:");
  if (wantsError) {
    if (r.code === 0) problems.push("exit status 0, but the README shows an error");
  } else if (r.code !== 0 && !extras.some((e) => e.mayFail?.test(r.stderr))) problems.push(`exit status ${r.code}`);
  if (/\bcurl\b/.test(cmd) && !exp.prose?.startsWith("HTTP")) for (const s of r.http) if (s < 200 || s > 299) problems.push(`HTTP status ${s}`);
  if (exp.json !== undefined) {
    let pattern: unknown;
    try {
      pattern = readJsonPattern(exp.json);
    } catch (err) {
      problems.push(`the README's JSON does not parse: ${(err as Error).message}`);
    }
    let actual: unknown;
    try {
      actual = JSON.parse(r.stdout);
    } catch {
      problems.push(`the output is not JSON`);
    }
    if (pattern !== undefined && actual !== undefined) problems.push(...matchJson(actual, pattern));
  }
  if (exp.line !== undefined) {
    const re = linePattern(exp.line, w);
    if (!r.stdout.split("\n").some((l) => re.test(l))) problems.push(`no output line like ${JSON.stringify(exp.line)} (${re.source})`);
  }
  if (exp.header) {
    const got = r.stdout.split("\n")[0]!.trim().split(/\s+/);
    if (got.join(" ") !== exp.header.join(" ")) problems.push(`the table's columns are ${got.join(" ")}, the README shows ${exp.header.join(" ")}`);
  }
  if (exp.lines) {
    const got = (r.stdout + r.stderr).replace(/\n+$/, "").split("\n");
    const res = exp.lines.map((l) => linePattern(l, w));
    if (got.length !== res.length) problems.push(`${got.length} line(s) of output, the README shows ${res.length}`);
    res.forEach((re, i) => {
      if (got[i] !== undefined && !re.test(got[i]!)) problems.push(`line ${i + 1} is ${JSON.stringify(got[i])}, the README shows ${JSON.stringify(exp.lines![i])}`);
    });
  }
  if (exp.prose !== undefined) {
    const known = PROSE.find((p) => p.says.test(exp.prose!));
    if (!known) problems.push(`the README says "${exp.prose}" here, and this test does not know how to check that: add it to PROSE`);
    else problems.push(...(await known.check(r, ex, cmd, st)));
  }
  for (const e of extras) if (e.check) problems.push(...(await e.check(r, st)).map((p) => `${p} [${e.why}]`));
  return problems;
}

const describeRun = (ex: Example, cmd: string, r: Ran) =>
  [
    `README.md:${ex.line}: ${ex.command}`,
    ...(ex.shown !== undefined ? [`README shows: ${ex.shown}`] : []),
    ...(cmd !== ex.command ? [`ran: ${cmd}`] : []),
    `exit ${r.code} after ${Math.round(r.ms)} ms${r.http.length ? `, HTTP ${r.http.join(", ")}` : ""}`,
    `stdout: ${JSON.stringify(r.stdout)}`,
    `stderr: ${JSON.stringify(r.stderr)}`,
  ].join("\n  ");

let st: State;
let shell: Shell;

describe("README examples", () => {
  beforeAll(async () => {
    const work = tempDir("pai-readme-");
    const home = join(work, ".home");
    const bin = join(work, ".bin");
    mkdirSync(home);
    mkdirSync(bin);
    const env = { HOME: home, XDG_CONFIG_HOME: join(home, ".config") };
    // As `npm start` starts it: package.json's start script, on a free loopback port and ./.pai.
    const start = /^bun src\/main\.ts serve((?: \S+)*)$/.exec(pkg.scripts.start);
    if (!start) throw new Error(`package.json's start script is not "bun src/main.ts serve …": ${pkg.scripts.start}`);
    const server = await startServer({ dataDir: join(work, ".pai"), args: start[1]!.trim().split(" ").filter(Boolean), env });
    // npx as npm runs it in the repo: the package's bin, and nothing from the network.
    const npx = join(bin, "npx");
    writeFileSync(
      npx,
      `#!/bin/sh\nif [ "$1" = pai ]; then shift; exec node ${JSON.stringify(join(ROOT, pkg.bin.pai))} "$@"; fi\necho "readme test: only npx pai runs here (got: npx $*)" >&2\nexit 127\n`,
    );
    chmodSync(npx, 0o755);
    const shellEnv: Record<string, string | undefined> = { ...process.env, ...env, PATH: `${bin}:${process.env.PATH}` };
    // Only loopback traffic: no proxy gets to see the calls to localhost.
    for (const k of Object.keys(shellEnv)) if (/^(https?|all|no)_proxy$/i.test(k)) delete shellEnv[k];
    shell = new Shell(work, shellEnv);
    st = { server, work, publicUrl: `http://localhost:${server.port}`, sessions: new Map() };
  }, 20_000);

  afterAll(async () => {
    await shell?.close();
    await st?.server.stop();
    if (st) removeDir(st.work);
  });

  test("every shell example in the README is run here or skipped with a reason", () => {
    const problems: string[] = [];
    for (const b of shellBlocks) {
      const first = examplesOf(b)[0]?.command;
      const matches = [...RUN, ...SKIP].filter((c) => c.heading === b.heading && c.first.test(first ?? ""));
      if (matches.length !== 1) problems.push(`README.md:${b.line} (${b.heading}: ${first}): ${matches.length ? "matches several entries" : "a new example: add it to RUN (with its checks) or to SKIP (with the reason)"}`);
    }
    for (const c of [...RUN, ...SKIP]) {
      const n = shellBlocks.filter((b) => b.heading === c.heading && c.first.test(examplesOf(b)[0]?.command ?? "")).length;
      if (n !== 1) problems.push(`${c.heading} ${c.first}: matches ${n} README blocks; update the list`);
    }
    for (const e of EXTRA) {
      const n = shellBlocks.filter((b) => { const c = classify(b); return c && !("why" in c); }).flatMap(examplesOf).filter((ex) => e.command.test(ex.command)).length;
      if (n !== 1) problems.push(`the extra check ${e.command} (${e.why}) matches ${n} README commands; update it`);
    }
    expect(problems).toEqual([]);
  });

  for (const block of shellBlocks) {
    const c = classify(block);
    if (!c) continue;
    const examples = examplesOf(block);
    if ("why" in c) {
      // Not run (see why), but every part that can be checked without running it is.
      for (const ex of examples)
        test(`README.md:${ex.line} ${ex.command.split("\n")[0]} — checked, not run: ${c.why}`, () => {
          expect(staticProblems(ex.command)).toEqual([]);
        });
      continue;
    }
    examples.forEach((ex, i) => {
      test(`README.md:${ex.line} ${ex.command.split("\n")[0]}${ex.command.includes("\n") ? " …" : ""}`, async () => {
        if (i === 0) await c.prepare?.(st, shell, block);
        const cmd = substitute(ex.command, st);
        for (const e of EXTRA) if (e.command.test(ex.command)) await e.before?.(st);
        const r = await shell.run(cmd, 15_000);
        remember(st, r.stdout + r.stderr);
        const problems = await differences(ex, cmd, r, st);
        if (problems.length) throw new Error(`${problems.map((p) => `- ${p}`).join("\n")}\n  ${describeRun(ex, cmd, r)}`);
      }, 20_000);
    });
  }
});
