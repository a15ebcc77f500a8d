"""Deskbell's icons: the app icon (SVG and PNGs rendered from it) and the status-row icons."""
