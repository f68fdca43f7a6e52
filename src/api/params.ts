/** Path parameters shared by the routes, validated as DNS-1123 labels with a 400 that says why. */
import { t } from "elysia";
import { BadRequestError } from "../domain/errors";
import { dnsLabelProblem } from "../domain/names";

export const NamespaceParams = t.Object({ namespace: t.String() });
export const NamedParams = t.Object({ namespace: t.String(), name: t.String() });

export function checkLabel(kind: string, value: string): string {
  const problem = dnsLabelProblem(value);
  if (problem) throw new BadRequestError(`invalid ${kind} name: ${problem}`);
  return value;
}
