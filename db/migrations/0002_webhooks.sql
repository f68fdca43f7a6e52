CREATE TABLE `webhook_deliveries` (
	`namespace` text NOT NULL,
	`agent` text NOT NULL,
	`delivery_id` text NOT NULL,
	`session` text NOT NULL,
	`created_at` text NOT NULL,
	PRIMARY KEY(`namespace`, `agent`, `delivery_id`)
);
--> statement-breakpoint
ALTER TABLE `sessions` ADD `payload` text;--> statement-breakpoint
ALTER TABLE `sessions` ADD `callback_url` text;--> statement-breakpoint
ALTER TABLE `sessions` ADD `callback_state` text;