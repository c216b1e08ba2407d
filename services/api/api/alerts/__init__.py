"""Alert rules over HTTP: register, list, pause and remove them; inspect their deliveries."""
