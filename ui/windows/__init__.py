"""Windows and dialogs: they compose widgets and talk to the service and its bridge."""
