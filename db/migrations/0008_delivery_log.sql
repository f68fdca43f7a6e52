CREATE TABLE `delivery_log` (
	`id` integer PRIMARY KEY NOT NULL,
	`namespace` text NOT NULL,
	`agent` text NOT NULL,
	`time` text NOT NULL,
	`sender` text NOT NULL,
	`event` text,
	`delivery` text,
	`code` integer NOT NULL,
	`session` text,
	`reason` text
);
--> statement-breakpoint
CREATE INDEX `delivery_log_agent_idx` ON `delivery_log` (`namespace`,`agent`,`id`);--> statement-breakpoint
CREATE INDEX `delivery_log_refused_idx` ON `delivery_log` (`namespace`,`agent`,`id`) WHERE code >= 400;