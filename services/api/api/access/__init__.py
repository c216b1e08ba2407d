"""Who may call the api and how often: API-key authentication, scopes, rate limits, client address."""
