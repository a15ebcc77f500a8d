"""Files the app ships (icons, the ping, email templates) and the id it is known by."""

# The one application id (reverse DNS): the desktop file's name, Qt's desktop file name (the
# Wayland app id, the launcher badge), the autostart entry, the notifications' desktop-entry,
# the Windows AppUserModelID and the macOS bundle id (packaging/README.md).
APP_ID = "app.deskbell.Deskbell"
