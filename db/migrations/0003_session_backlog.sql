DROP INDEX `sessions_phase_seq_idx`;--> statement-breakpoint
CREATE INDEX `sessions_pending_idx` ON `sessions` (`namespace`,`agent_definition`,`seq`) WHERE phase = 'Pending';--> statement-breakpoint
CREATE INDEX `sessions_running_idx` ON `sessions` (`seq`) WHERE phase = 'Running';--> statement-breakpoint
CREATE INDEX `sessions_callback_due_idx` ON `sessions` (`seq`) WHERE callback_state = 'pending' AND finished_at IS NOT NULL;