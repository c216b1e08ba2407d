"""The api service: read models over PostgreSQL and Redis, served with aiohttp."""
