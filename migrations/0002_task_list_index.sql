-- GET /v1/tasks without a state filter pages by (created_at, id), newest
-- first: without this index every page sorted the whole table.
CREATE INDEX tasks_created ON tasks (created_at DESC, id DESC);
