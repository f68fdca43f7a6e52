ALTER TABLE `sessions` ADD `usage` text;--> statement-breakpoint
CREATE INDEX `sessions_finished_idx` ON `sessions` (`finished_at`) WHERE finished_at IS NOT NULL;