/**
 * Reads Agent manifests from YAML text (one or many documents): each document becomes a validated
 * AgentInput or an error that names the file, the line and the field. Shared by `pai apply` and
 * the manifests watcher so both say the same thing about the same file.
 */
import { parseYamlFile, positionOf, resourceDocs, type YamlFile } from "../lib/yaml";
import { agentProblems, fieldToPath, validateAgent, type AgentInput } from "./agent";
import { formatProblem } from "./errors";

export const MAX_MANIFEST_BYTES = 1024 * 1024;

export interface ManifestError {
  /** `file:line:column: message`, ready to print. */
  text: string;
  line?: number;
  /** The agent's name (and namespace) when the document got far enough to have one. */
  name?: string;
  namespace?: string;
}

export interface LoadedManifests {
  file: YamlFile;
  agents: { input: AgentInput; docIndex: number }[];
  errors: ManifestError[];
}

export function loadManifests(text: string, fileName: string, defaultNamespace: string): LoadedManifests {
  if (Buffer.byteLength(text) > MAX_MANIFEST_BYTES) {
    return {
      file: parseYamlFile(""),
      agents: [],
      errors: [{ text: `${fileName}: file is larger than ${MAX_MANIFEST_BYTES} bytes; split it into smaller files` }],
    };
  }
  const file = parseYamlFile(text);
  const out: LoadedManifests = { file, agents: [], errors: [] };
  for (const d of resourceDocs(file)) {
    if (d.error) {
      out.errors.push({ text: `${fileName}:${d.error.line ?? d.line}:${d.error.column ?? 1}: ${d.error.message}`, line: d.error.line });
      continue;
    }
    const problems = agentProblems(d.value);
    const meta = (d.value as { metadata?: { name?: unknown; namespace?: unknown } })?.metadata;
    const name = meta?.name;
    const namespace = typeof meta?.namespace === "string" ? meta.namespace : defaultNamespace;
    if (problems.length) {
      for (const p of problems) {
        const pos = positionOf(file, d, fieldToPath(p.field));
        const where = `${fileName}:${pos?.line ?? d.line}:${pos?.column ?? 1}`;
        out.errors.push({ text: `${where}: ${formatProblem(p)}`, line: pos?.line, ...(typeof name === "string" ? { name, namespace } : {}) });
      }
      continue;
    }
    out.agents.push({ input: validateAgent(d.value, defaultNamespace), docIndex: d.index });
  }
  return out;
}
