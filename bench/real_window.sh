#!/usr/bin/env bash
# The studio in a real X window: start `python main.py` on Xvfb, click Save MIDI with xdotool,
# and save a screenshot of the whole screen, to look at (the dialog must be above the piano roll).
#
#   apt-get install xvfb xdotool imagemagick
#   bash bench/real_window.sh [out.png]
#
# The clicks land where Generate and Save MIDI are in a 1280x700 window.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-out/real_window.png}
mkdir -p "$(dirname "$out")"
display=:97
Xvfb $display -screen 0 1366x768x24 >/dev/null 2>&1 &
xvfb=$!
home=$(mktemp -d)
trap 'kill $studio $xvfb 2>/dev/null || true; rm -rf "$home"' EXIT
sleep 1
DISPLAY=$display CANTOR_HOME=$home SDL_AUDIODRIVER=dummy .venv/bin/python main.py --size 1280x700 &
studio=$!
for _ in $(seq 1 60); do  # wait for the window
    DISPLAY=$display xwininfo -name Cantor >/dev/null 2>&1 && break
    sleep 1
done
info=$(DISPLAY=$display xwininfo -name Cantor)
x0=$(awk '/Absolute upper-left X/ {print $4}' <<<"$info")
y0=$(awk '/Absolute upper-left Y/ {print $4}' <<<"$info")
click() { DISPLAY=$display xdotool mousemove $((x0 + $1)) $((y0 + $2)) click 1; }
sleep 8  # the model loads
click 81 498  # Generate (the sidebar's big button)
sleep 12
click 1100 626  # Save MIDI... (under the takes list)
sleep 2
DISPLAY=$display import -window root "$out"
echo "screenshot: $out"
