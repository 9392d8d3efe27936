"""Speech stage: text normalization, TTS with phoneme timings, G2P, viseme keyframes and captions."""
