"""Developer tooling: find or start Redis and PostgreSQL (`servers`) and run the whole stack (`stack`).

A dev-only distribution (`stocktrack-devtools`): `make install` puts it in the virtualenv, the
service images never carry it, so testcontainers and the embedded servers stay out of production.
"""
