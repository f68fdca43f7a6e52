/**
 * The delivery log on a Postgres shared by replicas (`pai serve --database`): the same table and
 * caps as ../deliveries.ts, so every replica reads the log of deliveries any replica answered.
 * A batch is one INSERT (its entries as one JSON parameter, in order), then one statement per cap
 * that trims every agent of the batch. The trims run outside the insert's transaction: two replicas
 * trimming one agent at once then never hold each other's row locks for long, and a trim that
 * fails is made good by that agent's next batch.
 */
import type { SQL } from "bun";
import type { DeliveryRepo, DeliveryRow } from "../deliveries";
import { rowToDelivery, touchedAgents } from "../deliveries";

export function createPgDeliveryRepo(sql: SQL): DeliveryRepo {
  return {
    async append(entries, caps) {
      if (!entries.length) return;
      const rows = JSON.stringify(
        entries.map((e) => ({ n: e.namespace, a: e.agent, t: e.time, s: e.sender, e: e.event ?? null, d: e.delivery ?? null, c: e.code, x: e.session ?? null, r: e.reason ?? null })),
      );
      // Ordered by position, so ids (the log's order) follow the batch's.
      await sql`
        INSERT INTO delivery_log (namespace, agent, time, sender, event, delivery, code, session, reason)
        SELECT v->>'n', v->>'a', v->>'t', v->>'s', v->>'e', v->>'d', (v->>'c')::int, v->>'x', v->>'r'
        FROM json_array_elements(${rows}::text::json) WITH ORDINALITY AS b(v, i) ORDER BY i`;
      const touched = touchedAgents(entries);
      const namespaces = touched.map((a) => a.namespace);
      const agents = touched.map((a) => a.agent);
      // Per agent, the id of its (keep+1)-th newest entry (NULL with fewer): it and the older ones go.
      // Refused entries only where some were added: their share cannot have grown elsewhere.
      const refused = touched.filter((a) => a.refused);
      if (refused.length)
        await sql`
          DELETE FROM delivery_log d USING (
            SELECT k.namespace, k.agent, (
              SELECT id FROM delivery_log WHERE namespace = k.namespace AND agent = k.agent AND code >= 400 ORDER BY id DESC OFFSET ${caps.refusedPerAgent}::int LIMIT 1
            ) AS edge FROM unnest(${refused.map((a) => a.namespace)}::text[], ${refused.map((a) => a.agent)}::text[]) AS k(namespace, agent)
          ) e
          WHERE d.namespace = e.namespace AND d.agent = e.agent AND d.code >= 400 AND d.id <= e.edge`;
      await sql`
        DELETE FROM delivery_log d USING (
          SELECT k.namespace, k.agent, (
            SELECT id FROM delivery_log WHERE namespace = k.namespace AND agent = k.agent ORDER BY id DESC OFFSET ${caps.perAgent}::int LIMIT 1
          ) AS edge FROM unnest(${namespaces}::text[], ${agents}::text[]) AS k(namespace, agent)
        ) e
        WHERE d.namespace = e.namespace AND d.agent = e.agent AND d.id <= e.edge`;
    },

    async list(namespace, agent, limit, before = Number.MAX_SAFE_INTEGER) {
      const rows: DeliveryRow[] = await sql`
        SELECT id, namespace, agent, time, sender, event, delivery, code, session, reason FROM delivery_log
        WHERE namespace = ${namespace} AND agent = ${agent} AND id < ${before}::bigint
        ORDER BY id DESC LIMIT ${limit}::int`;
      return rows.map(rowToDelivery);
    },

    async removeBefore(cutoff, limit) {
      const r = await sql`
        DELETE FROM delivery_log WHERE id IN (
          SELECT id FROM (SELECT id, time FROM delivery_log ORDER BY id LIMIT ${limit}::int) oldest WHERE time < ${cutoff})`;
      return r.count;
    },
  };
}
