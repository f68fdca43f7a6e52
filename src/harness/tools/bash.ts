/**
 * `bash`: runs a command with `bash -c` in the session's folder, inside the sandbox, with the
 * session's environment. The result says the exit code and shows stdout and stderr, each cut
 * after its first STREAM_CAP bytes. A non-zero exit code is an error result (the model should notice
 * a failed command); so are a timeout and a cancelled session, after which the command's whole
 * process group has been killed.
 */
import { checkInput } from "./paths";
import { ProcessRefused, runProcess } from "./process";
import { MAX_OUTPUT_CHARS, toolError, type Tool } from "./types";

export const DEFAULT_TIMEOUT_SECONDS = 120;
export const MAX_TIMEOUT_SECONDS = 600;
/** Bytes kept of each of stdout and stderr: both, with their labels and notes, fit the tool output cap. */
export const STREAM_CAP = Math.floor((MAX_OUTPUT_CHARS - 1000) / 2);
/** Longest command accepted (the kernel's limit on one argument is 128 KiB). */
const MAX_COMMAND_CHARS = 100_000;

function section(label: string, text: string): string {
  if (!text) return "";
  return `--- ${label} ---\n${text}${text.endsWith("\n") ? "" : "\n"}`;
}

export const bashTool: Tool = {
  name: "bash",
  description:
    "Run a shell command with `bash -c` in the working folder. Where the server has bubblewrap, the command runs in a sandbox: the filesystem is read-only except the working folder and a private /tmp, and there may be no network. " +
    `It is killed after timeoutSeconds (default ${DEFAULT_TIMEOUT_SECONDS}, at most ${MAX_TIMEOUT_SECONDS}); stdin is empty; background jobs (&) are killed when the command ends. ` +
    `The result gives the exit code, then stdout and stderr (each cut after ${STREAM_CAP} bytes). A non-zero exit code is reported as an error result.`,
  inputSchema: {
    type: "object",
    properties: {
      command: { type: "string", description: "The command, e.g. `ls -la src` or `npm test 2>&1 | tail -50`." },
      timeoutSeconds: { type: "number", description: `Seconds before the command is killed (default ${DEFAULT_TIMEOUT_SECONDS}, at most ${MAX_TIMEOUT_SECONDS}).`, exclusiveMinimum: 0, maximum: MAX_TIMEOUT_SECONDS },
    },
    required: ["command"],
    additionalProperties: false,
  },
  async run(input, ctx) {
    const bad = checkInput("bash", input, { command: { type: "string", required: true }, timeoutSeconds: { type: "number" } });
    if (bad) return bad;
    const command = input.command as string;
    if (!command.trim()) return toolError("the command is empty");
    if (command.includes("\0")) return toolError("the command contains a NUL byte");
    if (command.length > MAX_COMMAND_CHARS) return toolError(`the command is ${command.length} characters long; the limit is ${MAX_COMMAND_CHARS} (write a script with write_file and run that)`);
    const timeoutSeconds = (input.timeoutSeconds as number | undefined) ?? DEFAULT_TIMEOUT_SECONDS;
    if (timeoutSeconds <= 0 || timeoutSeconds > MAX_TIMEOUT_SECONDS) return toolError(`timeoutSeconds must be more than 0 and at most ${MAX_TIMEOUT_SECONDS}`);
    if (ctx.sandbox.refusal) return toolError(ctx.sandbox.refusal);
    let r;
    try {
      r = await runProcess(["bash", "-c", command], {
        cwd: ctx.cwd,
        env: ctx.env,
        signal: ctx.signal,
        timeoutMs: timeoutSeconds * 1000,
        sandbox: ctx.sandbox,
        maxOutput: STREAM_CAP,
      });
    } catch (err) {
      if (err instanceof ProcessRefused) return toolError(err.message);
      return toolError(`the command could not be started: ${err instanceof Error ? err.message : String(err)}`);
    }
    const streams = section("stdout", r.stdout) + section("stderr", r.stderr) || "(no output)\n";
    if (r.timedOut) return toolError(`the command timed out after ${timeoutSeconds} s; it and every process it started were killed\n${streams}`);
    if (r.aborted) return toolError(`the command was stopped because the session was cancelled or ran out of time; it and every process it started were killed\n${streams}`);
    if (r.exitCode === null) return toolError(`the command was killed by ${r.signal ?? "a signal"}\n${streams}`);
    const head = `exit code: ${r.exitCode}\n`;
    return r.exitCode === 0 ? { output: head + streams } : toolError(head + streams);
  },
};
