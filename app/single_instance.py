"""One Deskbell per user and data folder (D1): a second launch brings the first window forward.

The first instance listens on a local socket (a Unix socket file, a named pipe on Windows)
whose name is derived from the user and the data folder, so two users on one machine, or one
user with a separate `--data-dir` (the demo, say), each get their own instance. A second
launch connects, says "show", and exits 0.
"""

from __future__ import annotations

import getpass
import hashlib
import logging
from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtNetwork import QLocalServer, QLocalSocket

__all__ = ["SingleInstance", "instance_name"]

log = logging.getLogger(__name__)

_SHOW = b"show\n"
_TIMEOUT_MS = 1000


def instance_name(data_dir: Path, *, user: str | None = None) -> str:
    """The socket name for `user` and `data_dir`: short (socket paths are limited) and stable."""
    who = user if user is not None else _user()
    digest = hashlib.sha256(f"{who}\0{data_dir.resolve()}".encode()).hexdigest()[:16]
    return f"deskbell-{digest}"


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name (a container without passwd entry)
        return str(Path.home())


class SingleInstance(QObject):
    """`claim()` once at start-up; connect `activation_requested` to "show the main window"."""

    activation_requested = Signal()

    def __init__(self, *, data_dir: Path, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.name = instance_name(data_dir)
        self._server: QLocalServer | None = None
        self._clients: set[QLocalSocket] = set()

    @property
    def listening(self) -> bool:
        return self._server is not None and self._server.isListening()

    def claim(self) -> bool:
        """True: we are the first and now listen. False: the first was asked to show itself."""
        if self._ask_running_instance():
            return False
        server = QLocalServer(self)
        # Only this user may connect (the socket file's mode; the pipe's ACL on Windows).
        server.setSocketOptions(QLocalServer.SocketOption.UserAccessOption)
        server.newConnection.connect(self._on_server_new_connection)
        if not server.listen(self.name):
            # Nobody answered, so a socket file left by a crash is stale: remove it, retry.
            QLocalServer.removeServer(self.name)
            if not server.listen(self.name):
                log.warning(
                    "cannot listen on %s (%s): running without single-instance",
                    self.name,
                    server.errorString(),
                )
                server.deleteLater()
                return True
        self._server = server
        return True

    def release(self) -> None:
        """Stop listening (at shut-down), so a new launch becomes the first at once."""
        server, self._server = self._server, None
        for client in list(self._clients):
            self._drop(client)
        if server is not None:
            server.close()

    def _ask_running_instance(self) -> bool:
        socket = QLocalSocket()
        socket.connectToServer(self.name)
        if not socket.waitForConnected(_TIMEOUT_MS):
            return False
        socket.write(_SHOW)
        delivered = socket.waitForBytesWritten(_TIMEOUT_MS)
        socket.disconnectFromServer()
        if socket.state() != QLocalSocket.LocalSocketState.UnconnectedState:
            socket.waitForDisconnected(_TIMEOUT_MS)
        return delivered

    def _on_server_new_connection(self) -> None:
        server = self._server
        if server is None:
            return
        while (client := server.nextPendingConnection()) is not None:
            # Owned by us, not by the server, so no Qt-side deletion races Python's wrapper.
            client.setParent(self)
            self._clients.add(client)
            client.readyRead.connect(self._on_client_ready_read)
            client.disconnected.connect(self._on_client_disconnected)
            self._read(client)

    def _on_client_ready_read(self) -> None:
        client = self.sender()
        if isinstance(client, QLocalSocket):
            self._read(client)

    def _on_client_disconnected(self) -> None:
        client = self.sender()
        if isinstance(client, QLocalSocket):
            self._read(client)
            self._drop(client)

    def _read(self, client: QLocalSocket) -> None:
        if client.bytesAvailable() and _SHOW.strip() in bytes(client.readAll().data()):
            self.activation_requested.emit()

    def _drop(self, client: QLocalSocket) -> None:
        if client in self._clients:
            self._clients.discard(client)
            client.readyRead.disconnect(self._on_client_ready_read)
            client.disconnected.disconnect(self._on_client_disconnected)
            client.abort()
            client.deleteLater()
