/**
 * Covers the file tools (read_file, write_file, edit_file, glob, grep) and their path safety
 * (src/harness/tools/paths.ts) on real files in a temp folder: the happy paths, the caps, and every
 * way out of the working folder a model could try: `..`, absolute paths, NUL bytes, symlinks to
 * files and folders outside (and inside), and a folder swapped for a symlink after the check.
 * Files outside the working folder are checked afterwards to be unchanged.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { constants, existsSync, mkdirSync, readFileSync, renameSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createSandbox } from "../../src/harness/sandbox";
import { builtinTool } from "../../src/harness/tools/index";
import { isRefused, openInside, resolveInside } from "../../src/harness/tools/paths";
import { grepLimits, MAX_MATCHES } from "../../src/harness/tools/grep";
import { MAX_GLOB_RESULTS } from "../../src/harness/tools/glob";
import { ToolRegistry } from "../../src/harness/tools/registry";
import { MAX_OUTPUT_CHARS, type ToolContext } from "../../src/harness/tools/types";
import { removeDir, tempDir } from "../helpers";

const root = tempDir("pai-files-");
const cwd = join(root, "work");
const outside = join(root, "outside");
const tools = new ToolRegistry();
let ctx: ToolContext;
const PASSWD = readFileSync("/etc/passwd", "utf8");

beforeAll(async () => {
  for (const name of ["read_file", "write_file", "edit_file", "glob", "grep"] as const) tools.add(await builtinTool(name));
  mkdirSync(cwd);
  mkdirSync(outside);
  writeFileSync(join(outside, "secret.txt"), "OUTSIDE-SECRET\n");
  writeFileSync(join(outside, "victim.txt"), "VICTIM\n");
  writeFileSync(join(cwd, "real.txt"), "inside text\n");
  symlinkSync("/etc/passwd", join(cwd, "pw"));
  symlinkSync(join(outside, "victim.txt"), join(cwd, "victim-link"));
  symlinkSync(outside, join(cwd, "linkdir"));
  symlinkSync(join(cwd, "real.txt"), join(cwd, "inner-link"));
  mkdirSync(join(cwd, "sub"));
  symlinkSync(outside, join(cwd, "sub", "deeper"));
  ctx = { cwd, env: {}, signal: new AbortController().signal, sandbox: createSandbox({ cwd, hidden: [], network: false, allowUnsandboxed: true }), allowPrivateFetch: false };
});

afterAll(() => removeDir(root));

const call = (name: string, input: unknown, c: ToolContext = ctx) => tools.call(name, input, c);
const outsideUnchanged = () => {
  expect(readFileSync(join(outside, "secret.txt"), "utf8")).toBe("OUTSIDE-SECRET\n");
  expect(readFileSync(join(outside, "victim.txt"), "utf8")).toBe("VICTIM\n");
  expect(readFileSync("/etc/passwd", "utf8")).toBe(PASSWD);
};

describe("path safety: every way out is refused, for every file tool", () => {
  const escapes: [string, RegExp][] = [
    ["../x", /contains "\.\."/],
    ["../outside/secret.txt", /contains "\.\."/],
    ["a/../../x", /contains "\.\."/],
    ["sub/../real.txt", /contains "\.\."/],
    ["/etc/passwd", /is an absolute path/],
    [join(outside, "secret.txt"), /is an absolute path/],
    ["real.txt\0.png", /NUL byte/],
    ["", /empty/],
    ["pw", /pw is a symbolic link; the file tools do not follow symbolic links/],
    ["victim-link", /is a symbolic link/],
    ["linkdir/secret.txt", /linkdir is a symbolic link \(on the path linkdir\/secret.txt\)/],
    ["linkdir/new.txt", /linkdir is a symbolic link/],
    ["sub/deeper/secret.txt", /sub\/deeper is a symbolic link/],
    ["inner-link", /is a symbolic link.*even ones that point inside/],
    ["real.txt/x", /real.txt is not a folder/],
  ];

  for (const [path, message] of escapes) {
    test(`${JSON.stringify(path)}`, async () => {
      const inputs: [string, Record<string, unknown>][] = [
        ["read_file", { path }],
        ["write_file", { path, content: "PWNED" }],
        ["edit_file", { path, old_string: "VICTIM", new_string: "PWNED" }],
        ["grep", { pattern: "SECRET|root|VICTIM|inside", path }],
      ];
      for (const [tool, input] of inputs) {
        const r = await call(tool, input);
        expect({ tool, ...r }).toMatchObject({ tool, isError: true });
        expect(r.output).toMatch(message);
        expect(r.output).not.toContain("OUTSIDE-SECRET");
        expect(r.output).not.toContain("root:");
      }
      outsideUnchanged();
      expect(existsSync(join(outside, "new.txt"))).toBe(false);
    });
  }

  test("write_file through a symlink to /etc/passwd is refused and /etc/passwd is unchanged", async () => {
    const r = await call("write_file", { path: "pw", content: "root::0:0::/root:/bin/sh\n" });
    expect(r.isError).toBe(true);
    expect(r.output).toContain("symbolic link");
    expect(readFileSync("/etc/passwd", "utf8")).toBe(PASSWD);
  });

  test("a folder swapped for a symlink after the check is caught when the file is opened", () => {
    mkdirSync(join(cwd, "swap"));
    writeFileSync(join(cwd, "swap", "victim.txt"), "inside copy\n");
    const checked = resolveInside(cwd, "swap/victim.txt");
    const fresh = resolveInside(cwd, "swap/brand-new.txt");
    if (isRefused(checked) || isRefused(fresh)) throw new Error("the checks should pass before the swap");
    expect(checked.stat?.isFile()).toBe(true);
    expect(fresh.stat).toBeNull();
    // What a command running at the same time could do between the check and the open:
    renameSync(join(cwd, "swap"), join(cwd, "swap-moved"));
    symlinkSync(outside, join(cwd, "swap"));
    const read = openInside(cwd, checked, constants.O_RDONLY);
    expect(read).toMatchObject({ isError: true });
    expect((read as { output: string }).output).toContain("leads outside the working folder");
    const created = openInside(cwd, fresh, constants.O_WRONLY | constants.O_CREAT);
    expect(created).toMatchObject({ isError: true });
    // The file it made out there (O_EXCL: surely its own) is taken back.
    expect(existsSync(join(outside, "brand-new.txt"))).toBe(false);
    outsideUnchanged();
  });

  test("glob refuses patterns that leave the folder and finds nothing through symlinks", async () => {
    for (const [pattern, message] of [
      ["../*", /contains "\.\."/],
      ["../outside/*", /contains "\.\."/],
      ["**/../../*", /contains "\.\."/],
      ["/etc/*", /absolute/],
      ["a\0b", /NUL/],
      ["..\\*", /contains "\.\."/],
    ] as const) {
      const r = await call("glob", { pattern });
      expect(r.isError).toBe(true);
      expect(r.output).toMatch(message);
    }
    for (const pattern of ["linkdir/*", "sub/deeper/*", "**/secret.txt", "linkdir/**/*.txt"])
      expect(await call("glob", { pattern })).toEqual({ output: `no files match ${pattern}`, isError: false });
    for (const pattern of ["*", "**/*"]) {
      const lines = (await call("glob", { pattern })).output.split("\n");
      expect(lines).toContain("real.txt");
      for (const l of ["pw", "victim-link", "inner-link"]) expect(lines).not.toContain(l);
      expect(lines.filter((l) => l.startsWith("linkdir") || l.startsWith("sub/deeper"))).toEqual([]);
    }
  });

  test("grep over the folder follows no symlink (to files or folders)", async () => {
    const r = await call("grep", { pattern: "OUTSIDE-SECRET|VICTIM|root:|inside text" });
    expect(r.isError).toBe(false);
    const lines = r.output.split("\n");
    expect(lines).toContain("real.txt:1:inside text");
    expect(r.output).not.toContain("OUTSIDE-SECRET");
    expect(r.output).not.toContain("VICTIM");
    expect(r.output).not.toContain("root:");
    expect(r.output).not.toContain("inner-link");
  });
});

describe("read_file", () => {
  beforeAll(() => {
    writeFileSync(join(cwd, "lines.txt"), Array.from({ length: 10 }, (_, i) => `line ${i + 1}`).join("\n") + "\n");
  });

  test("shows the file with line numbers, like cat -n", async () => {
    const r = await call("read_file", { path: "lines.txt" });
    expect(r.isError).toBe(false);
    expect(r.output.split("\n").slice(0, 2)).toEqual(["     1\tline 1", "     2\tline 2"]);
    expect(r.output).toEndWith("    10\tline 10\n");
  });

  test("offset and limit pick lines and say where to read on", async () => {
    const r = await call("read_file", { path: "./lines.txt", offset: 4, limit: 2 });
    expect(r.output).toBe("     4\tline 4\n     5\tline 5\n[more lines follow; read on with offset 6]");
    expect(await call("read_file", { path: "lines.txt", offset: 10 })).toEqual({ output: "    10\tline 10\n", isError: false });
  });

  test("an offset past the end is an error that says how long the file is", async () => {
    expect(await call("read_file", { path: "lines.txt", offset: 11 })).toEqual({ output: "lines.txt has 10 lines; offset 11 is past its end", isError: true });
  });

  test("an empty file, a missing file, a folder, a FIFO and a binary file", async () => {
    writeFileSync(join(cwd, "empty.txt"), "");
    expect(await call("read_file", { path: "empty.txt" })).toEqual({ output: "empty.txt is empty", isError: false });
    expect(await call("read_file", { path: "nope.txt" })).toEqual({ output: "nope.txt does not exist", isError: true });
    expect(await call("read_file", { path: "sub" })).toMatchObject({ isError: true, output: expect.stringContaining("is a folder") });
    expect(Bun.spawnSync(["mkfifo", join(cwd, "fifo")]).exitCode).toBe(0);
    expect(await call("read_file", { path: "fifo" })).toMatchObject({ isError: true, output: expect.stringContaining("not a regular file") });
    writeFileSync(join(cwd, "image.png"), Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x00, 0x01, 0x02]));
    expect(await call("read_file", { path: "image.png" })).toEqual({ output: "image.png is a binary file (it contains NUL bytes); read_file shows text files only", isError: true });
  });

  test("long lines are cut and a big file stops within the output cap, saying where to read on", async () => {
    writeFileSync(join(cwd, "wide.txt"), `${"w".repeat(5000)}\nshort\n`);
    const wide = await call("read_file", { path: "wide.txt" });
    expect(wide.output).toContain(`${"w".repeat(2000)}… [line cut: 3000 more characters]\n     2\tshort\n`);
    writeFileSync(join(cwd, "big.txt"), Array.from({ length: 1999 }, (_, i) => `${i + 1} ${"b".repeat(100)}`).join("\n"));
    const big = await call("read_file", { path: "big.txt" });
    expect(big.isError).toBe(false);
    expect(big.output.length).toBeLessThanOrEqual(MAX_OUTPUT_CHARS);
    const stop = /\[stopped before line (\d+) to keep the output short; read on with offset (\d+)\]$/.exec(big.output);
    expect(stop).not.toBeNull();
    const next = await call("read_file", { path: "big.txt", offset: Number(stop![2]), limit: 1 });
    expect(next.output).toStartWith(`${String(stop![1]).padStart(6)}\t${stop![1]} bbb`);
  });

  test("bad input types are error results", async () => {
    for (const [input, message] of [
      [{}, /needs "path"/],
      [{ path: 5 }, /"path" of read_file must be a string/],
      [{ path: "lines.txt", offset: "2" }, /"offset" of read_file must be an integer/],
      [{ path: "lines.txt", offset: 1.5 }, /must be an integer/],
      [{ path: "lines.txt", offset: 0 }, /offset must be 1 or more/],
      [{ path: "lines.txt", limit: -1 }, /limit must be 1 or more/],
      [{ path: "lines.txt", follow: true }, /read_file has no input "follow"/],
    ] as const) {
      const r = await call("read_file", input);
      expect(r.isError).toBe(true);
      expect(r.output).toMatch(message);
    }
  });
});

describe("write_file", () => {
  test("creates the file and its folders, and says how many bytes it wrote", async () => {
    const r = await call("write_file", { path: "new/deep/dir/hello.md", content: "héllo\n" });
    expect(r).toEqual({ output: "wrote 7 bytes to new/deep/dir/hello.md", isError: false });
    expect(readFileSync(join(cwd, "new/deep/dir/hello.md"), "utf8")).toBe("héllo\n");
  });

  test("replaces a longer file completely and keeps its mode", async () => {
    writeFileSync(join(cwd, "script.sh"), "#!/bin/sh\necho a long first version\n", { mode: 0o755 });
    expect((await call("write_file", { path: "script.sh", content: "#!/bin/sh\n" })).isError).toBe(false);
    expect(readFileSync(join(cwd, "script.sh"), "utf8")).toBe("#!/bin/sh\n");
    expect(statSync(join(cwd, "script.sh")).mode & 0o777).toBe(0o755);
  });

  test("refuses a folder, the working folder itself, and a file where a folder should be", async () => {
    expect(await call("write_file", { path: "sub", content: "x" })).toMatchObject({ isError: true, output: expect.stringContaining("a folder") });
    expect(await call("write_file", { path: ".", content: "x" })).toMatchObject({ isError: true, output: expect.stringContaining("not the working folder") });
    expect(await call("write_file", { path: "real.txt/inner.txt", content: "x" })).toMatchObject({ isError: true, output: expect.stringContaining("real.txt is not a folder") });
    expect(await call("write_file", { path: "fresh/linkdir-like", content: 1 })).toMatchObject({ isError: true, output: expect.stringContaining('"content" of write_file must be a string') });
    expect(existsSync(join(cwd, "fresh"))).toBe(false);
  });
});

describe("edit_file", () => {
  test("replaces text that occurs exactly once, leaving $-patterns as written", async () => {
    writeFileSync(join(cwd, "code.ts"), "const a = 1;\nconst b = 2;\n");
    const r = await call("edit_file", { path: "code.ts", old_string: "const b = 2;", new_string: "const b = '$&$1';" });
    expect(r).toEqual({ output: "edited code.ts: replaced 1 occurrence at line 2 (31 bytes now)", isError: false });
    expect(readFileSync(join(cwd, "code.ts"), "utf8")).toBe("const a = 1;\nconst b = '$&$1';\n");
  });

  test("0 occurrences and 2 occurrences are errors that say so; the file is unchanged", async () => {
    writeFileSync(join(cwd, "twice.txt"), "foo\nbar\nfoo\n");
    expect(await call("edit_file", { path: "twice.txt", old_string: "baz", new_string: "x" })).toEqual({
      output: "old_string does not occur in twice.txt; read the file and copy the text exactly, whitespace included",
      isError: true,
    });
    expect(await call("edit_file", { path: "twice.txt", old_string: "foo", new_string: "x" })).toEqual({
      output: "old_string occurs 2 times in twice.txt; it must occur exactly once: include more of the surrounding text",
      isError: true,
    });
    // Overlapping occurrences count too: "aa" is in "aaa" twice.
    writeFileSync(join(cwd, "overlap.txt"), "aaa");
    expect((await call("edit_file", { path: "overlap.txt", old_string: "aa", new_string: "b" })).output).toContain("occurs 2 times");
    expect(readFileSync(join(cwd, "twice.txt"), "utf8")).toBe("foo\nbar\nfoo\n");
    expect(readFileSync(join(cwd, "overlap.txt"), "utf8")).toBe("aaa");
  });

  test("refuses empty or unchanged text, missing, binary and non-UTF-8 files", async () => {
    writeFileSync(join(cwd, "plain.txt"), "abc");
    writeFileSync(join(cwd, "bin.dat"), Buffer.from([0x61, 0x00, 0x62]));
    writeFileSync(join(cwd, "latin1.txt"), Buffer.from([0x63, 0x61, 0x66, 0xe9]));
    for (const [input, message] of [
      [{ path: "plain.txt", old_string: "", new_string: "x" }, /old_string is empty/],
      [{ path: "plain.txt", old_string: "abc", new_string: "abc" }, /the same/],
      [{ path: "missing.txt", old_string: "a", new_string: "b" }, /does not exist/],
      [{ path: "bin.dat", old_string: "a", new_string: "b" }, /binary file/],
      [{ path: "latin1.txt", old_string: "caf", new_string: "b" }, /not valid UTF-8/],
      [{ path: "plain.txt", old_string: "a" }, /needs "new_string"/],
    ] as const) {
      const r = await call("edit_file", input);
      expect(r.isError).toBe(true);
      expect(r.output).toMatch(message);
    }
    expect(readFileSync(join(cwd, "latin1.txt"))).toEqual(Buffer.from([0x63, 0x61, 0x66, 0xe9]));
  });
});

describe("glob", () => {
  test("matches files under the folder, sorted, without hidden ones", async () => {
    mkdirSync(join(cwd, "g/b"), { recursive: true });
    mkdirSync(join(cwd, "g/.git"), { recursive: true });
    for (const f of ["g/b/z.ts", "g/a.ts", "g/b/y.ts", "g/.git/hidden.ts", "g/.env.ts", "g/readme.md"]) writeFileSync(join(cwd, f), "");
    expect(await call("glob", { pattern: "g/**/*.ts" })).toEqual({ output: "g/a.ts\ng/b/y.ts\ng/b/z.ts", isError: false });
    expect(await call("glob", { pattern: "g/*.{md,ts}" })).toEqual({ output: "g/a.ts\ng/readme.md", isError: false });
    expect(await call("glob", { pattern: "g/*.py" })).toEqual({ output: "no files match g/*.py", isError: false });
  });

  test(`is capped at ${MAX_GLOB_RESULTS} results, saying so`, async () => {
    mkdirSync(join(cwd, "many"));
    for (let i = 0; i < MAX_GLOB_RESULTS + 5; i++) writeFileSync(join(cwd, "many", `f${String(i).padStart(4, "0")}.txt`), "");
    const r = await call("glob", { pattern: "many/*.txt" });
    const lines = r.output.split("\n");
    expect(lines).toHaveLength(MAX_GLOB_RESULTS + 1);
    expect(lines.at(-1)).toBe(`[more than ${MAX_GLOB_RESULTS} files match; only ${MAX_GLOB_RESULTS} are shown: narrow the pattern]`);
    expect(lines.slice(0, -1)).toEqual([...lines.slice(0, -1)].sort());
  });
});

describe("grep", () => {
  beforeAll(() => {
    mkdirSync(join(cwd, "src/nested"), { recursive: true });
    mkdirSync(join(cwd, "src/node_modules/pkg"), { recursive: true });
    writeFileSync(join(cwd, "src/main.ts"), "function main() {\n  // TODO: more\n}\n");
    writeFileSync(join(cwd, "src/nested/util.ts"), "export function Helper() {}\r\n");
    writeFileSync(join(cwd, "src/node_modules/pkg/index.js"), "function main() {}\n");
    writeFileSync(join(cwd, "src/.hidden.ts"), "function main() {}\n");
    writeFileSync(join(cwd, "src/blob.bin"), Buffer.from("function main\0"));
  });

  test("prints file:line:text for matches under a folder, skipping node_modules, hidden and binary files", async () => {
    const r = await call("grep", { pattern: "function\\s+\\w+", path: "src" });
    expect(r).toEqual({ output: "src/main.ts:1:function main() {\nsrc/nested/util.ts:1:export function Helper() {}\n[files left out: 1 binary]", isError: false });
  });

  test("searches one file, case-insensitively when asked", async () => {
    expect(await call("grep", { pattern: "helper", path: "src/nested/util.ts" })).toMatchObject({ output: expect.stringContaining("no lines match"), isError: false });
    expect(await call("grep", { pattern: "helper", path: "src/nested/util.ts", ignoreCase: true })).toEqual({
      output: "src/nested/util.ts:1:export function Helper() {}",
      isError: false,
    });
    expect(await call("grep", { pattern: "main", path: "src/blob.bin" })).toMatchObject({ isError: true, output: expect.stringContaining("binary") });
  });

  test("a bad regex and bad input are error results", async () => {
    expect(await call("grep", { pattern: "(unclosed" })).toMatchObject({ isError: true, output: expect.stringContaining("not a valid JavaScript regular expression") });
    expect(await call("grep", { pattern: "[z-a]" })).toMatchObject({ isError: true });
    expect(await call("grep", { pattern: "x", ignoreCase: "yes" })).toMatchObject({ isError: true, output: expect.stringContaining("must be a boolean") });
    expect(await call("grep", { pattern: "x", path: "nope" })).toEqual({ output: "nope does not exist", isError: true });
  });

  test(`is capped at ${MAX_MATCHES} matching lines, saying so`, async () => {
    writeFileSync(join(cwd, "src/many.txt"), "hit\n".repeat(MAX_MATCHES + 100));
    const r = await call("grep", { pattern: "^hit$", path: "src/many.txt" });
    const lines = r.output.split("\n");
    expect(lines).toHaveLength(MAX_MATCHES + 1);
    expect(lines[0]).toBe("src/many.txt:1:hit");
    expect(lines.at(-1)).toBe(`[stopped at ${MAX_MATCHES} matching lines: narrow the pattern or the path]`);
  });

  test("a catastrophically slow pattern is stopped, not left to hang the session", async () => {
    writeFileSync(join(cwd, "src/evil.txt"), `${"a".repeat(60)}!\n`);
    const before = grepLimits.timeMs;
    grepLimits.timeMs = 300;
    try {
      const r = await call("grep", { pattern: "^(a+)+$", path: "src/evil.txt" });
      expect(r.isError).toBe(true);
      expect(r.output).toContain("grep was stopped after 0.3 s: the pattern is too slow");
    } finally {
      grepLimits.timeMs = before;
    }
    // The next search works as usual.
    expect((await call("grep", { pattern: "TODO", path: "src" })).output).toStartWith("src/main.ts:2:  // TODO: more\n");
  });

  test("the session's abort stops a slow search", async () => {
    const abort = new AbortController();
    const running = call("grep", { pattern: "^(a+)+$", path: "src/evil.txt" }, { ...ctx, signal: abort.signal });
    setTimeout(() => abort.abort(), 50);
    const r = await running;
    expect(r).toMatchObject({ isError: true, output: expect.stringContaining("the session was cancelled") });
  });
});
