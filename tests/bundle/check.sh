#!/usr/bin/env bash
# The .deb as a clinician's machine gets it: build it (make bundle), install it
# with dpkg, check what it put where (binary, .desktop entry with the DICOM and
# image MIME types, icons), launch the installed app on a real DICOM file under
# Xvfb and check through WebDriver that the image shows, then remove the
# package and check nothing of it is left. Run by `make test`.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"

make --no-print-directory bundle
deb=$(ls -t target/bundle/release/bundle/deb/*.deb | head -1)
size=$(stat -c %s "$deb")
echo "==> Package: $deb ($(( size / 1048576 )) MiB)"
mkdir -p target/bench
{ echo "### Installable bundles"; echo;
  echo "Built by \`make bundle\` for the x86-64-v3 baseline, without models. Goal: .deb under 40 MB.";
  echo; echo "| bundle | size (MB) |"; echo "|---|---:|";
  echo "| $(basename "$deb") | $(awk "BEGIN { printf \"%.1f\", $size / 1e6 }") |"; } > target/bench/bundle.md
[ "$size" -lt 40000000 ] || { echo "the .deb is $size bytes, over the 40 MB goal"; exit 1; }

pkg=$(dpkg-deb -f "$deb" Package)
$sudo dpkg -r "$pkg" >/dev/null 2>&1 || true
echo "==> Installing $pkg with dpkg"
$sudo dpkg -i "$deb"
trap '$sudo dpkg -r "$pkg" >/dev/null 2>&1 || true' EXIT

fail() { echo "installed package check failed: $*"; exit 1; }
bin=/usr/bin/medgemma-desk
[ -x "$bin" ] || fail "no $bin"
desktop=$(dpkg -L "$pkg" | grep '\.desktop$' | head -1)
[ -n "$desktop" ] || fail "no .desktop entry"
grep -q '^MimeType=.*application/dicom' "$desktop" || fail "$desktop does not register application/dicom"
grep -q '^MimeType=.*image/png' "$desktop" || fail "$desktop does not offer PNG"
grep -q '^Exec=.*%[FfUu]' "$desktop" || fail "$desktop does not pass the opened file (%F) to the app"
dpkg -L "$pkg" | grep -q '/usr/share/icons/hicolor/.*/apps/.*\.png$' || fail "no icons"
"$bin" --version | grep -q "medgemma-desk" || fail "the installed binary does not run"
echo "==> Installed files look right: $bin, $desktop, icons"

echo "==> Launching the installed app on a real DICOM file (WebDriver, Xvfb)"
MEDGEMMA_DESK_APP="$bin" timeout --signal=TERM --kill-after=30 300 \
  dbus-run-session -- tests/keyring.sh xvfb-run -a -s "-screen 0 1600x1000x24" \
  cargo test --release -p medgemma-desk --test e2e -- --ignored --test-threads=1 installed::

echo "==> Removing $pkg"
$sudo dpkg -r "$pkg"
trap - EXIT
[ ! -e "$bin" ] || fail "$bin is still there after removal"
echo "==> Removed cleanly"
