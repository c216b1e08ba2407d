"""HTTP machinery every api feature shares: declared endpoints, request parameters, the OpenAPI document."""
