"""D1: a second launch brings the first window forward instead of starting again."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest
from PySide6.QtNetwork import QLocalServer
from pytestqt.qtbot import QtBot

from app.single_instance import SingleInstance, instance_name


def test_d1_second_claim_returns_false_and_first_is_asked_to_show(
    qtbot: QtBot, tmp_path: Path
) -> None:
    first = SingleInstance(data_dir=tmp_path)
    assert first.claim() is True
    assert first.listening
    try:
        second = SingleInstance(data_dir=tmp_path)
        with qtbot.waitSignal(first.activation_requested, timeout=30_000):
            assert second.claim() is False
        assert not second.listening
    finally:
        first.release()


def test_d1_other_data_folder_is_another_instance(qtbot: QtBot, tmp_path: Path) -> None:
    first = SingleInstance(data_dir=tmp_path / "a")
    other = SingleInstance(data_dir=tmp_path / "b")
    try:
        assert first.claim() is True
        assert other.claim() is True
    finally:
        first.release()
        other.release()


def test_d1_after_release_a_new_launch_is_first(qtbot: QtBot, tmp_path: Path) -> None:
    first = SingleInstance(data_dir=tmp_path)
    assert first.claim()
    first.release()
    again = SingleInstance(data_dir=tmp_path)
    try:
        assert again.claim() is True
    finally:
        again.release()


@pytest.mark.skipif(sys.platform == "win32", reason="socket files are a Unix thing")
def test_d1_stale_socket_file_from_a_crash_is_replaced(qtbot: QtBot, tmp_path: Path) -> None:
    """A crashed instance leaves its socket file behind; nobody answers there any more."""
    name = instance_name(tmp_path)
    probe = QLocalServer()
    assert probe.listen(name)
    path = probe.fullServerName()
    probe.close()
    # Recreate the file like a crash would leave it: bound, never listened to, then abandoned.
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(path)
    stale.close()
    assert Path(path).exists()

    instance = SingleInstance(data_dir=tmp_path)
    try:
        assert instance.claim() is True
        assert instance.listening
    finally:
        instance.release()


def test_d1_names_differ_per_user_and_folder(tmp_path: Path) -> None:
    a = instance_name(tmp_path, user="ann")
    assert a == instance_name(tmp_path, user="ann")
    assert a != instance_name(tmp_path, user="bob")
    assert a != instance_name(tmp_path / "demo", user="ann")
    assert len(a) < 40  # Unix socket paths are short
