#!/usr/bin/env bash
# Loads an hptop speedscope file in the real speedscope app (npm package `speedscope`) in
# headless Chromium (Debian's chromium-headless-shell) and saves a screenshot of what it shows.
# Usage: scripts/speedscope-check.sh FILE.speedscope.json [SHOT.png]
# Needs npm and chromium-headless-shell (apt-get install chromium-headless-shell).
set -euo pipefail
file=$(realpath "$1")
shot=$(realpath -m "${2:-speedscope.png}")
work=$(mktemp -d)
trap 'kill "$server" 2>/dev/null || true; rm -rf "$work"' EXIT
(cd "$work" && npm install --silent speedscope >/dev/null)
app="$work/node_modules/speedscope/dist/release"
cp "$file" "$app/profile.json"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
(cd "$app" && exec python3 -m http.server "$port" --bind 127.0.0.1 >/dev/null 2>&1) &
server=$!
sleep 1
chromium-headless-shell --no-sandbox --disable-gpu --hide-scrollbars --window-size=1400,900 \
  --virtual-time-budget=8000 --screenshot="$shot" \
  "http://127.0.0.1:$port/index.html#profileURL=http://127.0.0.1:$port/profile.json" 2>/dev/null
echo "speedscope $(grep -m1 '"version"' "$work/node_modules/speedscope/package.json" | tr -dc '0-9.') rendered $1 to $shot"
