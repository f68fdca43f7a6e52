/**
 * The webhook benchmark's baseline: a bare Bun.serve that reads a POST body, JSON.parses it and
 * answers 200 with a reply shaped like a webhook's; GET (/readyz) answers ready. Takes `--port N`
 * and `--host H` like `pai serve`; compiled with the same flags as dist/pai.
 */
const flag = (name: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : undefined;
};
const json = { "content-type": "application/json" };

Bun.serve({
  port: Number(flag("port") ?? 8080),
  hostname: flag("host") ?? "127.0.0.1",
  async fetch(req) {
    if (req.method !== "POST") return new Response('{"status":"ready"}', { headers: json });
    const body = JSON.parse(await req.text()) as { title?: unknown };
    if (typeof body !== "object" || body === null) return new Response('{"error":"bad body"}', { status: 400, headers: json });
    return new Response(JSON.stringify({ session: "x-wh-00000000", agentDefinition: "x" }), { headers: json });
  },
});

export {}; // a module, so `flag` does not clash with bench/bare-server.ts's in the type check
