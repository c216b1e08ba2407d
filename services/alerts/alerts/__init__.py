"""The alerts service: matches signals and ticks against user alert rules and delivers webhooks."""
