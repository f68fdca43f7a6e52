/** The benchmarks' baseline: the smallest Bun HTTP server, answering /readyz; takes `--port N` and `--host H` like `pai serve`. */
const flag = (name: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : undefined;
};

Bun.serve({
  port: Number(flag("port") ?? 8080),
  hostname: flag("host") ?? "127.0.0.1",
  fetch: () => new Response('{"status":"ready"}', { headers: { "content-type": "application/json" } }),
});
