#!/usr/bin/env bash
# macOS: sign dist/Deskbell.app inside out with the hardened runtime, notarize and staple it,
# then wrap it in a signed, notarized, stapled .dmg. Run after `pyinstaller packaging/deskbell.spec`
# (with packaging/build/Deskbell.icns made by `packaging/macos/build.sh icns` first).
#
#   packaging/macos/build.sh icns          # the app icon, from resources/icons/deskbell.svg
#   packaging/macos/build.sh app VERSION   # sign + notarize + staple the .app, then the .dmg
#
# Signing needs, in the environment (the release workflow maps its secrets to these):
#   MACOS_SIGN_IDENTITY   "Developer ID Application: Name (TEAMID)", in an unlocked keychain
#   APPLE_ID, APPLE_TEAM_ID, APPLE_APP_PASSWORD   for notarytool (an app-specific password)
# Without MACOS_SIGN_IDENTITY the app keeps PyInstaller's ad-hoc signature and nothing is
# notarized: fine for testing on this Mac, refused by Gatekeeper elsewhere.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-python}
APP=dist/Deskbell.app
ENTITLEMENTS=packaging/macos/entitlements.plist

icns() {
  local set=packaging/build/Deskbell.iconset
  rm -rf "$set" && mkdir -p "$set"
  # Drawn from the SVG by the app's own renderer (offscreen Qt): 16 ... 1024 px.
  QT_QPA_PLATFORM=offscreen "$PY" - "$set" <<'PYEOF'
import sys
from pathlib import Path
from PySide6.QtGui import QGuiApplication
app = QGuiApplication([])
from ui.icons import render_app_pngs
folder = Path(sys.argv[1])
for path in render_app_pngs(folder=folder, sizes=(16, 32, 64, 128, 256, 512, 1024)):
    print(path)
PYEOF
  for size in 16 32 128 256 512; do
    cp "$set/deskbell-$size.png" "$set/icon_${size}x${size}.png"
    cp "$set/deskbell-$((size * 2)).png" "$set/icon_${size}x${size}@2x.png"
  done
  rm "$set"/deskbell-*.png
  iconutil -c icns "$set" -o packaging/build/Deskbell.icns
}

sign() {  # sign FILE...: hardened runtime, secure timestamp
  codesign --force --timestamp --options runtime --entitlements "$ENTITLEMENTS" \
    --sign "$MACOS_SIGN_IDENTITY" "$@"
}

notarize() {  # notarize FILE (.zip or .dmg); waits for Apple's answer
  xcrun notarytool submit "$1" --apple-id "$APPLE_ID" --team-id "$APPLE_TEAM_ID" \
    --password "$APPLE_APP_PASSWORD" --wait --timeout 30m
}

app() {
  local version=$1 machine dmg
  machine=$(uname -m)
  dmg="dist/Deskbell-$version-macos-$machine.dmg"
  if [ -n "${MACOS_SIGN_IDENTITY:-}" ]; then
    # Inside out: every Mach-O file (libraries, Python extensions, Qt plugins) first, deepest
    # first, then the programs, then the bundle. --deep is not used: it signs in the wrong order
    # and with the wrong options for nested code.
    find "$APP/Contents" -type f ! -path "*/Contents/MacOS/*" -print0 |
      while IFS= read -r -d '' f; do
        if file -b "$f" | grep -q "Mach-O"; then printf '%s\0' "$f"; fi
      done |
      awk 'BEGIN { RS = "\0"; ORS = "\0" } { print length($0) "\t" $0 }' | sort -z -rn |
      cut -z -f2- | xargs -0 -n 20 bash -c 'sign "$@"' _
    sign "$APP/Contents/MacOS/deskbell-cli" "$APP/Contents/MacOS/Deskbell"
    sign "$APP"
    codesign --verify --strict --deep --verbose=2 "$APP"
    ditto -c -k --keepParent "$APP" dist/Deskbell-notarize.zip
    notarize dist/Deskbell-notarize.zip
    rm dist/Deskbell-notarize.zip
    xcrun stapler staple "$APP"
    spctl --assess --type execute --verbose=2 "$APP"
  else
    echo "build.sh: MACOS_SIGN_IDENTITY is not set: not signed, not notarized" >&2
  fi
  # The disk image: the app and a link to /Applications to drag it onto.
  local stage=build/dmg
  rm -rf "$stage" && mkdir -p "$stage"
  ditto "$APP" "$stage/Deskbell.app"
  ln -s /Applications "$stage/Applications"
  rm -f "$dmg"
  hdiutil create -volname "Deskbell $version" -srcfolder "$stage" -fs HFS+ -format UDZO \
    -imagekey zlib-level=9 -ov "$dmg"
  if [ -n "${MACOS_SIGN_IDENTITY:-}" ]; then
    codesign --force --timestamp --sign "$MACOS_SIGN_IDENTITY" "$dmg"
    notarize "$dmg"
    xcrun stapler staple "$dmg"
  fi
  echo "build.sh: $dmg"
}

export -f sign
export ENTITLEMENTS
case ${1:-} in
  icns) icns ;;
  app) app "${2:?give the version}" ;;
  *) echo "usage: $0 icns | app VERSION" >&2; exit 2 ;;
esac
