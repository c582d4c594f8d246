-- A request in progress holds its Idempotency-Key until lease_until: a
-- process killed while answering left its key unanswered for ever, and
-- every retry was refused. Keys left so before this migration are free
-- at once.
ALTER TABLE idempotency_keys
	ADD COLUMN lease_until timestamptz NOT NULL DEFAULT now();
