CREATE TABLE `replicas` (
	`id` text PRIMARY KEY NOT NULL,
	`heartbeat_at` integer NOT NULL,
	`started_at` text NOT NULL
);
--> statement-breakpoint
CREATE TABLE `session_names` (
	`namespace` text NOT NULL,
	`agent` text NOT NULL,
	`last` integer NOT NULL,
	PRIMARY KEY(`namespace`, `agent`)
);
--> statement-breakpoint
ALTER TABLE `sessions` ADD `owner` text;