"""Market data over HTTP: the watch list, quotes and ticks, bars and indicators, signals."""
