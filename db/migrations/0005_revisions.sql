CREATE TABLE `revisions` (
	`rev` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`kind` text NOT NULL,
	`namespace` text NOT NULL,
	`name` text NOT NULL,
	`type` text NOT NULL,
	`object` text
);
--> statement-breakpoint
-- Objects made before the log existed: one ADDED row each, and their resource_version from it.
INSERT INTO `revisions` (`kind`, `namespace`, `name`, `type`) SELECT 'Agent', `namespace`, `name`, 'ADDED' FROM `agents` ORDER BY `namespace`, `name`;--> statement-breakpoint
INSERT INTO `revisions` (`kind`, `namespace`, `name`, `type`) SELECT 'Secret', `namespace`, `name`, 'ADDED' FROM `secrets` ORDER BY `namespace`, `name`;--> statement-breakpoint
UPDATE `agents` SET `resource_version` = (SELECT max(`rev`) FROM `revisions` r WHERE r.`kind` = 'Agent' AND r.`namespace` = `agents`.`namespace` AND r.`name` = `agents`.`name`);--> statement-breakpoint
UPDATE `secrets` SET `resource_version` = (SELECT max(`rev`) FROM `revisions` r WHERE r.`kind` = 'Secret' AND r.`namespace` = `secrets`.`namespace` AND r.`name` = `secrets`.`name`);
