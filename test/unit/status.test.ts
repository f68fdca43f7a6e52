/** Errors as responses: domain errors keep their status, a full or failing store is a 503, the rest a 500 with no detail. */
import { describe, expect, test } from "bun:test";
import { errorResponse } from "../../src/api/status";
import { NotFoundError, TooManyRequestsError } from "../../src/domain/errors";
import { createLogger } from "../../src/lib/log";

const lines: string[] = [];
const log = createLogger("debug", (l) => lines.push(l));
const req = new Request("http://localhost/webhooks/default/a/secret-token");

describe("errorResponse", () => {
  test("a domain error keeps its status, message and headers", async () => {
    const r = errorResponse(new TooManyRequestsError("slow down", 10), req, log);
    expect(r.status).toBe(429);
    expect(r.headers.get("retry-after")).toBe("10");
    expect(await r.json()).toMatchObject({ kind: "Status", code: 429, reason: "TooManyRequests", message: "slow down" });
    expect(errorResponse(new NotFoundError("no"), req, log).status).toBe(404);
  });

  test("a store that cannot write (disk full, I/O error) is a 503 that says nothing was accepted", async () => {
    for (const code of ["SQLITE_FULL", "SQLITE_IOERR_WRITE", "SQLITE_BUSY"]) {
      const r = errorResponse(Object.assign(new Error("database or disk is full"), { code }), req, log);
      expect(r.status).toBe(503);
      expect(((await r.json()) as { message: string }).message).toContain("nothing was accepted");
    }
  });

  test("anything else is a 500 without the cause; the cause goes to the log, the URL's token does not", async () => {
    lines.length = 0;
    const r = errorResponse(new TypeError("x is undefined at secret place"), req, log);
    expect(r.status).toBe(500);
    const body = await r.text();
    expect(body).not.toContain("secret place");
    expect(lines.join("")).toContain("secret place");
    expect(lines.join("")).toContain("/webhooks/default/a/***");
    expect(lines.join("")).not.toContain("secret-token");
  });
});
