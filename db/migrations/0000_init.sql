CREATE TABLE `access_tokens` (
	`id` text PRIMARY KEY NOT NULL,
	`namespace` text,
	`name` text NOT NULL,
	`hash` text NOT NULL,
	`created_at` text NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `access_tokens_hash_idx` ON `access_tokens` (`hash`);--> statement-breakpoint
CREATE INDEX `access_tokens_namespace_idx` ON `access_tokens` (`namespace`);--> statement-breakpoint
CREATE TABLE `agents` (
	`namespace` text NOT NULL,
	`name` text NOT NULL,
	`uid` text NOT NULL,
	`generation` integer NOT NULL,
	`resource_version` integer NOT NULL,
	`labels` text,
	`annotations` text,
	`spec` text NOT NULL,
	`status` text NOT NULL,
	`source` text NOT NULL,
	`created_at` text NOT NULL,
	`updated_at` text NOT NULL,
	PRIMARY KEY(`namespace`, `name`)
);
--> statement-breakpoint
CREATE INDEX `agents_source_idx` ON `agents` (`source`);--> statement-breakpoint
CREATE TABLE `secrets` (
	`namespace` text NOT NULL,
	`name` text NOT NULL,
	`uid` text NOT NULL,
	`type` text NOT NULL,
	`resource_version` integer NOT NULL,
	`labels` text,
	`data` text NOT NULL,
	`owner_uid` text,
	`created_at` text NOT NULL,
	PRIMARY KEY(`namespace`, `name`)
);
--> statement-breakpoint
CREATE INDEX `secrets_owner_uid_idx` ON `secrets` (`owner_uid`);