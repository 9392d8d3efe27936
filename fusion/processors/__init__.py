"""Frame processors: one contract (`Processor`), many implementations, chained by the engine."""
