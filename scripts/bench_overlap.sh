#!/usr/bin/env bash
# Would rendering frames while the neural voice synthesizes pay on this machine? Times a Kokoro synthesis
# of one text and a render of another (espeak-ng speech, cached, so it is frames only) alone, then both at
# once. If "both at once" is near the sum, the two stages already share the cores (docs/benchmarks.md).
set -euo pipefail
cd "$(dirname "$0")/.."
export DHF_HOME=$(mktemp -d)
ln -s "$(.venv/bin/python -c 'from config import load_settings; print(load_settings().paths.models)')" "$DHF_HOME/models"
A="Welcome to our bank. Today I will explain how a one-year fixed deposit works, what rate you get, and when you can withdraw your money without losing any interest. Your deposit earns 3.5% per year."
B="If you need the money early, you can close the deposit at any time, but the interest will then be paid at the lower demand rate for the whole period you held it. To open a deposit, bring a valid passport."
synth() { .venv/bin/python -c "
import sys
from config import load_settings, load_voices
from pipeline import stages
stages.speak(sys.argv[1], load_voices()[0]['en-us-neural-female'], load_settings())" "$1"; }
render() { .venv/bin/dhf render "$1" --avatar sample --lang en --voice en-us-female -o "$DHF_HOME/$2.mp4" --quiet >/dev/null; }
clock() { date +%s.%N; }
render "$B" warm
start=$(clock); synth "$A"; alone_synth=$(echo "$(clock) - $start" | bc)
rm -rf "$DHF_HOME/cache/sentences" "$DHF_HOME/cache/speech/"*
render "$B" warm-again
start=$(clock); render "$B" alone; alone_render=$(echo "$(clock) - $start" | bc)
rm -rf "$DHF_HOME/cache/sentences"
start=$(clock); synth "$A" & render "$B" together; wait; together=$(echo "$(clock) - $start" | bc)
echo "synthesis alone ${alone_synth} s, render alone ${alone_render} s, both at once ${together} s"
rm -rf "$DHF_HOME"
