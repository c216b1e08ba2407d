"""The writer service: ticks and signals from Redis Streams into PostgreSQL."""
