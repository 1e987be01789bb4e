"""Background work: Task rows (the source of truth), executors, progress events."""
