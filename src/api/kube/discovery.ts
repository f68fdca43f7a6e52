/**
 * Discovery, as kube-apiserver answers it: `/version`, `/api` (APIVersions), `/apis`
 * (APIGroupList), `/apis/pai.io` (APIGroup), `/api/v1` and `/apis/pai.io/v1` (APIResourceList).
 * kubectl reads these before anything else. Any valid token may read them (namespace tokens too),
 * as any authenticated user may on a cluster. Aggregated discovery is not offered: kubectl asks for
 * it first and falls back to these plain JSON answers when the response is application/json.
 */
import { Elysia } from "elysia";
import type { TokenService } from "../../service/tokens";
import { requirePrincipal } from "../auth";
import { ACCESS_TOKENS, AGENTS, NAMESPACES, PAI_GROUP, SECRETS, SESSIONS, type KubeResource } from "./resources";

/** The Kubernetes API version whose conventions pai follows (kubectl warns beyond one minor of skew). */
export const KUBE_MAJOR = "1";
export const KUBE_MINOR = "32";

const GROUP_VERSION = `${PAI_GROUP}/v1`;

const ARCH: Record<string, string> = { x64: "amd64", arm64: "arm64", arm: "arm", ia32: "386" };

/** `/version`: the Kubernetes version served, with pai's own as semver build metadata (as k3s does). */
export function versionInfo(paiVersion: string) {
  const build = paiVersion.replace(/[^0-9A-Za-z.-]/g, "-") || "dev";
  return {
    major: KUBE_MAJOR,
    minor: KUBE_MINOR,
    gitVersion: `v${KUBE_MAJOR}.${KUBE_MINOR}.0+pai.${build}`,
    gitCommit: "",
    gitTreeState: "clean",
    buildDate: "",
    goVersion: "",
    compiler: "bun",
    platform: `${process.platform}/${ARCH[process.arch] ?? process.arch}`,
  };
}

function resourceEntry(r: KubeResource) {
  return {
    name: r.plural,
    singularName: r.singular,
    namespaced: r.namespaced,
    kind: r.kind,
    verbs: r.verbs,
    ...(r.shortNames ? { shortNames: r.shortNames } : {}),
    ...(r.categories ? { categories: r.categories } : {}),
  };
}

const groupEntry = {
  name: PAI_GROUP,
  versions: [{ groupVersion: GROUP_VERSION, version: "v1" }],
  preferredVersion: { groupVersion: GROUP_VERSION, version: "v1" },
};

export const coreResources = () => ({ kind: "APIResourceList", apiVersion: "v1", groupVersion: "v1", resources: [NAMESPACES, SECRETS].map(resourceEntry) });
/** The agents' status subresource (kubectl patch --subresource=status looks for it here). */
const agentStatusEntry = { name: `${AGENTS.plural}/status`, singularName: "", namespaced: true, kind: AGENTS.kind, verbs: ["get", "patch", "update"] };
export const paiResources = () => ({
  kind: "APIResourceList",
  apiVersion: "v1",
  groupVersion: GROUP_VERSION,
  resources: [resourceEntry(AGENTS), agentStatusEntry, ...[SESSIONS, ACCESS_TOKENS].map(resourceEntry)],
});

export function discoveryRoutes(deps: { tokens: TokenService; version: string }) {
  const { tokens } = deps;
  const version = versionInfo(deps.version);
  return new Elysia({ name: "kube-discovery" })
    .onBeforeHandle(({ request }) => {
      requirePrincipal(tokens, request.headers.get("authorization"));
    })
    .get("/version", () => version, { detail: { tags: ["Kubernetes discovery"], summary: "The Kubernetes version served (kubectl version)" } })
    .get(
      "/api",
      ({ request }) => ({
        kind: "APIVersions",
        versions: ["v1"],
        // Where clients should reach the server: where they reached it.
        serverAddressByClientCIDRs: [{ clientCIDR: "0.0.0.0/0", serverAddress: new URL(request.url).host }],
      }),
      { detail: { tags: ["Kubernetes discovery"], summary: "The core API's versions (APIVersions)" } },
    )
    .get("/apis", () => ({ kind: "APIGroupList", apiVersion: "v1", groups: [groupEntry] }), {
      detail: { tags: ["Kubernetes discovery"], summary: "API groups (APIGroupList): pai.io/v1" },
    })
    .get(`/apis/${PAI_GROUP}`, () => ({ kind: "APIGroup", apiVersion: "v1", ...groupEntry }), {
      detail: { tags: ["Kubernetes discovery"], summary: "The pai.io API group (APIGroup)" },
    })
    .get("/api/v1", coreResources, { detail: { tags: ["Kubernetes discovery"], summary: "Core resources served (APIResourceList): namespaces (read-only), secrets" } })
    .get(`/apis/${GROUP_VERSION}`, paiResources, {
      detail: { tags: ["Kubernetes discovery"], summary: "pai.io/v1 resources (APIResourceList): agents, agents/status, sessions, accesstokens" },
    });
}
