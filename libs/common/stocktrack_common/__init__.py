"""Code every stocktrack service shares; the contracts themselves are in DESIGN.md."""
