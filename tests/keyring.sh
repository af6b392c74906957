#!/usr/bin/env bash
# Runs a command with a real Secret Service, as a desktop user has one:
# gnome-keyring-daemon with a login keyring made and unlocked in a throwaway
# folder, on the D-Bus session bus this runs on. The app keeps its store's
# key there (src-tauri/src/store_key.rs).
#   dbus-run-session -- tests/keyring.sh COMMAND...
set -euo pipefail
: "${DBUS_SESSION_BUS_ADDRESS:?run this under dbus-run-session}"
dir=$(mktemp -d)
# The daemon keeps its keyrings under $XDG_DATA_HOME/keyrings and its control
# socket under $XDG_RUNTIME_DIR; both in the throwaway folder. It reads the
# login keyring's password on stdin (--unlock) and stays in the foreground so
# that this script can stop it.
printf 'medgemma-desk-tests' | XDG_DATA_HOME="$dir" XDG_RUNTIME_DIR="$dir" \
  gnome-keyring-daemon --foreground --unlock --components=secrets >/dev/null 2>&1 &
daemon=$!
trap 'kill "$daemon" 2>/dev/null; wait "$daemon" 2>/dev/null; rm -rf "$dir"' EXIT
owned() {
  dbus-send --session --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus \
    org.freedesktop.DBus.NameHasOwner string:org.freedesktop.secrets 2>/dev/null | grep -q 'boolean true'
}
for _ in $(seq 100); do owned && break; sleep 0.1; done
owned || { echo "tests/keyring.sh: gnome-keyring-daemon did not start" >&2; exit 1; }
echo "==> Secret Service: gnome-keyring-daemon (pid $daemon), login keyring unlocked" >&2
"$@"
