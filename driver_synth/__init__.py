"""Standard driver: a per-frame motion track (independent of who is shown) and a viewable driver video."""
