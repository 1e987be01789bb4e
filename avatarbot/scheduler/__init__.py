"""Scheduled reports: cron schedules in the DB, fired exactly once across replicas, pushed to chats."""
