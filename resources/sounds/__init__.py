"""The ping sound (D4) and the script that makes it."""
