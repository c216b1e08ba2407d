"""The streamer service: every tick, signal and closed 1-minute bar, pushed to SSE and WebSocket clients."""
