-- resultd claims an assignment before it downloads a result's bundle, so
-- that concurrent submissions of one assignment do not each download it:
-- the claim is a lease, so a process killed while checking leaves none
-- behind for longer than the lease.
ALTER TABLE assignments ADD COLUMN submit_lease_until timestamptz;
