"""A code-hosting back office on Conveyor: repository sync, statistics, access logs,
minimaps and migrations, on six queues with interval and cron schedules."""
