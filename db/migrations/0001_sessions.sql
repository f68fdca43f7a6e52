CREATE TABLE `session_events` (
	`namespace` text NOT NULL,
	`session` text NOT NULL,
	`id` integer NOT NULL,
	`type` text NOT NULL,
	`content` text NOT NULL,
	`timestamp` text NOT NULL,
	PRIMARY KEY(`namespace`, `session`, `id`),
	FOREIGN KEY (`namespace`,`session`) REFERENCES `sessions`(`namespace`,`name`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE TABLE `sessions` (
	`namespace` text NOT NULL,
	`name` text NOT NULL,
	`uid` text NOT NULL,
	`agent_definition` text NOT NULL,
	`generation` integer NOT NULL,
	`spec` text NOT NULL,
	`title` text NOT NULL,
	`env` text NOT NULL,
	`origin` text NOT NULL,
	`phase` text NOT NULL,
	`response` text,
	`error` text,
	`seq` integer NOT NULL,
	`created_at` text NOT NULL,
	`started_at` text,
	`finished_at` text,
	PRIMARY KEY(`namespace`, `name`)
);
--> statement-breakpoint
CREATE INDEX `sessions_phase_seq_idx` ON `sessions` (`phase`,`seq`);--> statement-breakpoint
CREATE INDEX `sessions_namespace_seq_idx` ON `sessions` (`namespace`,`seq`);