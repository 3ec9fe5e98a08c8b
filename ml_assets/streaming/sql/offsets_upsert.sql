-- Advance one partition's stored position; runs in the batch's transaction.
INSERT INTO {offsets_table} (topic, "partition", next_offset, updated_at)
VALUES ($topic, $partition, $next_offset, $at)
ON CONFLICT (topic, "partition") DO UPDATE
SET next_offset = excluded.next_offset, updated_at = excluded.updated_at
