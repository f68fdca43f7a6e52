/**
 * The response schemas of the OpenAPI documents (src/api/openapi/schemas.ts) against what the
 * functions that build responses return: checked with every object closed, so a field added to
 * secretObject or sessionObject without its schema fails here. test/e2e/openapi.test.ts does the
 * same with real responses of a running server. Also the TypeBox → OpenAPI 3.0 conversion.
 */
import { describe, expect, test } from "bun:test";
import { secretObject } from "../../src/api/secrets";
import { sessionObject } from "../../src/api/sessions";
import { toOpenApiSchema } from "../../src/api/openapi/convert";
import { Secret, Session, Status } from "../../src/api/openapi/schemas";
import { failure } from "../../src/api/status";
import type { Session as DomainSession } from "../../src/domain/session";
import { checkClosed } from "../openapi-check";

const row = {
  namespace: "default",
  name: "pai-webhook-echo",
  uid: "9f0c2a8e-0000-4000-8000-000000000001",
  type: "pai.io/webhook-token",
  data: { token: "abc" },
  labels: { "pai.io/agent": "echo" },
  ownerUid: "9f0c2a8e-0000-4000-8000-000000000002",
  createdAt: "2026-04-12T10:00:00.000Z",
  resourceVersion: 7,
};

const session: DomainSession = {
  name: "echo-run-00000001",
  namespace: "default",
  uid: "u",
  agentDefinition: "echo",
  generation: 1,
  spec: { models: ["pai/echo"] },
  title: "hello",
  env: [{ name: "A", value: "secret" }],
  origin: { kind: "webhook", sender: "github", delivery: "d-1", event: "push" },
  phase: "Complete",
  response: "hello",
  error: null,
  createdAt: "2026-04-12T10:00:00.000Z",
  startedAt: "2026-04-12T10:00:01.000Z",
  finishedAt: "2026-04-12T10:00:02.000Z",
  usage: { inputTokens: 3, outputTokens: 4, byModel: { "pai/echo": { inputTokens: 3, outputTokens: 4 } } },
};

describe("response schemas fit what the routes build", () => {
  test("secretObject, with and without labels and an owner", () => {
    expect(checkClosed(Secret, secretObject(row as never))).toEqual([]);
    expect(checkClosed(Secret, secretObject({ ...row, labels: null, ownerUid: null } as never))).toEqual([]);
  });

  test("sessionObject, finished and pending", () => {
    expect(checkClosed(Session, sessionObject(session))).toEqual([]);
    expect(checkClosed(Session, sessionObject({ ...session, phase: "Pending", response: null, startedAt: null, finishedAt: null, usage: null }))).toEqual([]);
  });

  test("Status objects as errors are built", () => {
    expect(checkClosed(Status, failure(404, "NotFound", 'agents.pai.io "x" not found', { name: "x", kind: "agents" }))).toEqual([]);
    expect(checkClosed(Status, failure(422, "Invalid", "bad", { causes: [{ field: "spec.models[0]", message: "unknown model" }] }))).toEqual([]);
  });

  test("the check finds a field the schema lacks, and a value of the wrong type", () => {
    expect(checkClosed(Secret, { ...secretObject(row as never), extra: 1 })).toEqual(["/extra: Unexpected property"]);
    expect(checkClosed(Session, { ...sessionObject(session), phase: "Done" })[0]).toStartWith("/phase:");
  });
});

describe("TypeBox → OpenAPI 3.0", () => {
  test("literals, nulls, records and exclusive bounds become what 3.0 can say", () => {
    const s = toOpenApiSchema({
      type: "object",
      $id: "X",
      errorMessage: "no",
      properties: {
        kind: { const: "Agent", type: "string" },
        phase: { anyOf: [{ const: "A", type: "string" }, { const: "B", type: "string" }] },
        response: { anyOf: [{ type: "string" }, { type: "null" }] },
        wait: { anyOf: [{ type: "integer" }, { type: "boolean" }, { type: "null" }] },
        labels: { type: "object", patternProperties: { "^(.*)$": { type: "string" } } },
        n: { type: "number", exclusiveMinimum: 0 },
      },
      required: [],
    });
    expect(s).toEqual({
      type: "object",
      properties: {
        kind: { enum: ["Agent"], type: "string" },
        phase: { type: "string", enum: ["A", "B"] },
        response: { type: "string", nullable: true },
        wait: { anyOf: [{ type: "integer", nullable: true }, { type: "boolean", nullable: true }] },
        labels: { type: "object", additionalProperties: { type: "string" } },
        n: { type: "number", minimum: 0, exclusiveMinimum: true },
      },
    });
  });

  test("a component, or a T.Optional copy of it, becomes a $ref below the top", () => {
    const inner = { type: "object", properties: { a: { type: "string" } } };
    const copy = { ...inner };
    const refs = new Map<object, string>([[inner, "Inner"]]);
    expect(toOpenApiSchema({ type: "object", properties: { x: inner, y: copy } }, refs)).toEqual({
      type: "object",
      properties: { x: { $ref: "#/components/schemas/Inner" }, y: { $ref: "#/components/schemas/Inner" } },
    });
    expect(toOpenApiSchema(inner, refs)).toEqual(inner);
    expect(toOpenApiSchema(inner, refs, { ref: true })).toEqual({ $ref: "#/components/schemas/Inner" });
  });
});
