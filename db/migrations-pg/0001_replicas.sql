CREATE SEQUENCE "public"."sessions_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1;--> statement-breakpoint
CREATE TABLE "replicas" (
	"id" text PRIMARY KEY NOT NULL,
	"heartbeat_at" bigint NOT NULL,
	"started_at" text NOT NULL
);
--> statement-breakpoint
CREATE TABLE "session_names" (
	"namespace" text NOT NULL,
	"agent" text NOT NULL,
	"last" bigint NOT NULL,
	CONSTRAINT "session_names_namespace_agent_pk" PRIMARY KEY("namespace","agent")
);
--> statement-breakpoint
ALTER TABLE "sessions" ADD COLUMN "owner" text;