"""Scheduled upkeep of stocktrack's PostgreSQL tables and Redis streams, one CronJob per task."""
