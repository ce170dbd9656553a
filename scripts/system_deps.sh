#!/usr/bin/env bash
# Install the Debian packages kws needs (PortAudio for `kws live`, PulseAudio for the virtual
# microphone test, espeak-ng/sox for synthetic speech, gcc/g++ for compiling exported C,
# chromium for rendering the HTML report in its test, wamerican(-small) word lists that tell
# `kws data confusables` common words from surnames).
# As root it installs what is missing; otherwise it prints the exact command and carries on,
# so the parts that need a missing package skip with a reason instead of failing obscurely.
set -u
PKGS="libportaudio2 pulseaudio pulseaudio-utils libasound2-plugins espeak-ng sox gcc g++ chromium wamerican-small wamerican ${KWS_EXTRA_APT:-}"
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
  echo "installing system packages:$missing"
  export DEBIAN_FRONTEND=noninteractive
  { apt-get update -qq && apt-get install -y -qq --no-install-recommends $missing >/dev/null; } \
    || echo "warning: apt-get could not install:$missing (tests that need them will skip)"
else
  echo "warning: missing system packages:$missing"
  echo "  run: sudo apt-get install -y --no-install-recommends$missing"
fi
exit 0
