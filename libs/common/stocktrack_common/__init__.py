"""Code every stocktrack service shares, contracts included; docs/architecture.md describes them."""
