// Covers src/lib/args.ts parseArgs: long/short flags, inline values, booleans, repeats, positionals, usage errors.
import { describe, expect, test } from "bun:test";
import { parseArgs, UsageError, type FlagSpec, type Parsed } from "../../src/lib/args";

const SPEC: FlagSpec = {
  port: { short: "p" },
  output: { short: "o" },
  verbose: { short: "v", boolean: true },
  tag: { multiple: true },
};

describe("parseArgs", () => {
  const cases: { name: string; argv: string[]; expected: Parsed }[] = [
    { name: "nothing", argv: [], expected: { flags: {}, positionals: [] } },
    { name: "--flag value", argv: ["--port", "9000"], expected: { flags: { port: "9000" }, positionals: [] } },
    { name: "--flag=value", argv: ["--port=9000"], expected: { flags: { port: "9000" }, positionals: [] } },
    { name: "only the first = splits", argv: ["--output=a=b"], expected: { flags: { output: "a=b" }, positionals: [] } },
    { name: "--flag= gives an empty value", argv: ["--output="], expected: { flags: { output: "" }, positionals: [] } },
    { name: "-f value", argv: ["-p", "9000"], expected: { flags: { port: "9000" }, positionals: [] } },
    { name: "-fvalue", argv: ["-p9000"], expected: { flags: { port: "9000" }, positionals: [] } },
    { name: "-f=value", argv: ["-p=9000"], expected: { flags: { port: "9000" }, positionals: [] } },
    { name: "boolean long", argv: ["--verbose"], expected: { flags: { verbose: true }, positionals: [] } },
    { name: "boolean short", argv: ["-v"], expected: { flags: { verbose: true }, positionals: [] } },
    { name: "boolean =false", argv: ["-v", "--verbose=false"], expected: { flags: { verbose: false }, positionals: [] } },
    { name: "boolean =true", argv: ["--verbose=true"], expected: { flags: { verbose: true }, positionals: [] } },
    { name: "a boolean does not eat the next argument", argv: ["--verbose", "file"], expected: { flags: { verbose: true }, positionals: ["file"] } },
    { name: "last value wins for a single flag", argv: ["--port", "1", "--port", "2"], expected: { flags: { port: "2" }, positionals: [] } },
    { name: "multiple flag collects values", argv: ["--tag", "x", "--tag=y"], expected: { flags: { tag: ["x", "y"] }, positionals: [] } },
    { name: "positionals around flags", argv: ["get", "-o", "yaml", "agents"], expected: { flags: { output: "yaml" }, positionals: ["get", "agents"] } },
    { name: "a lone - is a positional", argv: ["-"], expected: { flags: {}, positionals: ["-"] } },
    { name: "everything after -- is positional", argv: ["a", "--", "--port", "-v"], expected: { flags: {}, positionals: ["a", "--port", "-v"] } },
  ];

  test.each(cases)("$name", ({ argv, expected }) => {
    expect(parseArgs(argv, SPEC)).toEqual(expected);
  });

  const errors: { name: string; argv: string[]; message: string }[] = [
    { name: "unknown long flag", argv: ["--bogus"], message: "unknown flag --bogus" },
    { name: "unknown long flag with a value", argv: ["--bogus=1"], message: "unknown flag --bogus" },
    { name: "unknown short flag", argv: ["-x"], message: "unknown flag -x" },
    { name: "value missing at the end", argv: ["--port"], message: "--port needs a value" },
    { name: "short flag value missing", argv: ["-o"], message: "--output needs a value" },
    { name: "boolean given a value", argv: ["--verbose=yes"], message: "--verbose takes no value" },
    { name: "short boolean given a value", argv: ["-vx"], message: "--verbose takes no value" },
  ];

  test.each(errors)("$name → UsageError", ({ argv, message }) => {
    expect(() => parseArgs(argv, SPEC)).toThrow(UsageError);
    expect(() => parseArgs(argv, SPEC)).toThrow(message);
  });
});
