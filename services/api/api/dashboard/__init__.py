"""The dashboard pages served by the api, and the summaries only they need."""
