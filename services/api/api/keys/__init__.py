"""API keys: their format, hash and rows, and the `stocktrack apikey` command that manages them."""
