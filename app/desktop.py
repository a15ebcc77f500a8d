"""The desktop app: start-up in order, logged, and shut-down in reverse (STYLE.md).

QApplication → single instance → the qasync loop → a quiet "Loading…" frame → the service (or
the demo workspace) → who is signed in → background work → the bridge → tray, sound,
notifications → the window, which takes the frame's place.

The frame is shown before the database is opened and before the main window's modules are
imported, so a start paints something at once; `--quit-after-shown` still waits for the window
with its first page of data.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

os.environ.setdefault("QT_API", "pyside6")  # qasync picks its binding at import (NOTES.md)

import qasync
from PySide6.QtCore import (
    QEventLoop,
    QMessageLogContext,
    QRect,
    QSettings,
    Qt,
    QtMsgType,
    qInstallMessageHandler,
)
from PySide6.QtWidgets import (
    QApplication,
    QDialog,
    QInputDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QWidget,
)

from app import autostart, paths
from app.single_instance import SingleInstance
from app.wake import WakeWatch
from resources import APP_ID
from services.clock import SystemClock
from services.errors import AuthenticationError, DeskbellError, NotFoundError, StoreCorruptError
from ui.icons import app_icon, app_icon_file
from ui.platform import PlatformUnavailable
from ui.platform.badge import set_app_badge
from ui.platform.fonts import use_emoji_font
from ui.platform.idle import make_idle_probe
from ui.platform.notify import system_notifier_chain
from ui.platform.sound import Pinger, make_sound_player
from ui.tasks import Tasks
from ui.theme import apply_theme
from ui.widgets.tray import Tray
from ui.windows.window_place import WindowPlace

if TYPE_CHECKING:
    from services.api import PersonInfo, Service, TeamSync, UnseenCounts

    # Imported after the loading frame is painted (~0.1 s of widget modules).
    from ui.windows.main_window import MainWindow

__all__ = [
    "QUIT_SIGNALS",
    "STATE_FILE_ENV",
    "Shutdown",
    "display_problem",
    "identify_app",
    "run_desktop",
]

log = logging.getLogger("deskbell.desktop")

STATE_FILE_ENV = "DESKBELL_TEST_STATE_FILE"  # tests and benchmarks read the counts from here
SIGNED_IN_FILE = "desktop-user"  # who uses this app on this machine (not in the shared db)
PLACE_FILE = "desktop.ini"  # the window's place and splitter, per machine
# Signals that end the app through its normal shut-down (logout, `kill`, Ctrl+C, a closed
# terminal); Windows has none of these but SIGINT, which Qt's loop never sees there.
QUIT_SIGNALS: tuple[str, ...] = ("SIGTERM", "SIGINT", "SIGHUP") if sys.platform != "win32" else ()


def run_desktop(args: argparse.Namespace) -> int:
    """The app without a command. Returns the process exit code."""
    problem = display_problem(os.environ, platform=sys.platform)
    if problem is not None:
        print(f"deskbell: error: {problem}", file=sys.stderr)
        return 1
    log.info("start: Qt application")
    app = QApplication.instance() or QApplication(sys.argv[:1])
    assert isinstance(app, QApplication)
    app.setApplicationName("Deskbell")
    identify_app(app)
    app.setWindowIcon(app_icon())
    app.setQuitOnLastWindowClosed(False)  # the tray keeps us running (D1)
    try:
        folder = paths.data_dir(args.data_dir)
        if args.demo:
            folder = paths.data_dir(str(folder / "demo"))
        elif getattr(args, "demo_team", False):
            folder = paths.data_dir(str(folder / "demo-team"))
    except DeskbellError as exc:
        # Started from a menu nobody reads stderr: the dialog says it too.
        return _cannot_start("Deskbell cannot start", exc, dialog=not args.quit_after_shown)

    log.info("start: single instance for %s", folder)
    single = SingleInstance(data_dir=folder)
    if not single.claim():
        log.info("Deskbell already runs for this folder: asked it to come forward")
        return 0
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    shutdown = Shutdown()
    for name in QUIT_SIGNALS:
        # A logout or `kill` quits through the same shut-down as the tray's Quit.
        loop.add_signal_handler(getattr(signal, name), shutdown.request, name)
    runner = _EventLoopRunner(app, loop)
    try:
        main = loop.create_task(_start(app, args, folder, single, shutdown))
        shutdown.main = main
        return runner.run(main, shutdown)
    except asyncio.CancelledError:
        return 0  # a signal during start-up: nothing was running yet
    finally:
        runner.close()
        single.release()
        gc.enable()
        log.info("stopped")


def _collect_garbage_from_now_on() -> None:
    """The end of start-up (app.cli turned the garbage collector off for it): what start-up
    built stays for the app's life, so it is frozen, never scanned again, then collection
    resumes for what comes after."""
    if not gc.isenabled():
        gc.collect()
        gc.freeze()
        gc.enable()


def identify_app(
    app: QApplication, *, set_windows_id: Callable[[str], object] | None = None
) -> None:
    """Name the app by `APP_ID` before any window exists (D1, N7).

    The desktop file name is the Wayland app id and where the launcher badge goes; on Windows
    the AppUserModelID groups the taskbar button with the Start menu shortcut (which the
    installer gives the same id) and routes toast notifications to it.
    """
    app.setDesktopFileName(APP_ID)
    if set_windows_id is None and sys.platform == "win32":
        set_windows_id = _set_windows_app_user_model_id
    if set_windows_id is not None:
        set_windows_id(APP_ID)


def _set_windows_app_user_model_id(app_id: str) -> None:
    import ctypes  # Windows only

    windll = ctypes.windll  # type: ignore[attr-defined,unused-ignore]
    windll.shell32.SetCurrentProcessExplicitAppUserModelID(ctypes.c_wchar_p(app_id))


class Shutdown:
    """Why the app stops: the tray's or the menu's Quit, a signal, a lost display.

    Before the window is up, a request cancels the start-up (its exit stack closes what was
    opened); afterwards it sets `stop`, which the running app awaits.
    """

    def __init__(self) -> None:
        self.stop = asyncio.Event()
        self.main: asyncio.Task[int] | None = None
        self.running = False

    def request(self, why: str) -> None:
        log.info("%s: quitting", why)
        if self.running or self.main is None:
            self.stop.set()
        elif not self.main.done():
            self.main.cancel()


class _EventLoopRunner:
    """Runs the qasync loop, and goes on without Qt's own event loop when the window system
    ends it (an X server that dies makes `exec()` return at once, forever after): then Qt's
    events are processed by hand until the shut-down has closed the service."""

    def __init__(self, app: QApplication, loop: qasync.QEventLoop) -> None:
        self._app = app
        self._loop = loop
        self.display_lost = False

    def run(self, main: asyncio.Task[int], shutdown: Shutdown) -> int:
        # Not qasync's run_until_complete: once Qt's loop has ended, it processes Qt's events
        # one last time with no running asyncio loop, so every coroutine stepped then fails
        # with "no running event loop" (seen when the display dies just as the window shows).
        main.add_done_callback(lambda _: self._loop.stop())
        self._loop.run_forever()
        if main.done():
            return int(main.result())
        # Qt left its event loop by itself: the display is gone (or the session ends). One
        # line, then the normal shut-down, which closes the service.
        log.error("lost the connection to the display: quitting")
        self.display_lost = True
        qInstallMessageHandler(_ignore_qt_message)  # the X11 warning repeats on every turn
        self._loop.call_soon(shutdown.request, "display lost")
        self._pump(main)
        return 1

    def close(self) -> None:
        for task in asyncio.all_tasks(self._loop):
            task.cancel()
        leftovers = asyncio.gather(*asyncio.all_tasks(self._loop), return_exceptions=True)
        self._complete(leftovers)
        self._complete(self._loop.shutdown_asyncgens())
        self._loop.close()

    def _complete(self, work: Awaitable[object]) -> None:
        if self.display_lost:
            self._pump(work)
        else:
            self._loop.run_until_complete(work)

    def _pump(self, work: Awaitable[object], *, seconds: float = 60) -> None:
        future = asyncio.ensure_future(work, loop=self._loop)
        deadline = time.monotonic() + seconds
        # What qasync does around exec(): coroutines ask for the running loop.
        asyncio.events._set_running_loop(self._loop)
        try:
            while not future.done() and time.monotonic() < deadline:
                self._app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
                time.sleep(0.002)  # processEvents does not wait: do not spin
        finally:
            asyncio.events._set_running_loop(None)
        if not future.done():
            log.error("shut-down did not finish within %.0f s", seconds)


def _ignore_qt_message(kind: QtMsgType, context: QMessageLogContext, message: str) -> None:
    """After the display is gone, Qt's complaints about it say nothing new."""


def display_problem(env: Mapping[str, str], *, platform: str) -> str | None:
    """Why no window can be shown here (Linux and BSD without a display), or None.

    Qt would abort with a core dump and a page of plugin advice; one line says what to do.
    """
    if not platform.startswith(("linux", "freebsd", "openbsd", "netbsd")):
        return None  # Windows and macOS always have their window system
    qpa = env.get("QT_QPA_PLATFORM", "").split(":")[0].strip()
    if qpa and qpa not in ("xcb", "wayland", "wayland-egl"):
        return None  # offscreen, vnc, eglfs...: no display server needed
    if env.get("DISPLAY") or env.get("WAYLAND_DISPLAY"):
        return None
    return (
        "no display to show the window on (DISPLAY and WAYLAND_DISPLAY are not set): "
        "start Deskbell in a desktop session, or run `deskbell serve` for the headless service"
    )


class _FileDamaged(Exception):
    """The integrity check after the first window found the database file damaged."""


async def _start(
    app: QApplication,
    args: argparse.Namespace,
    folder: Path,
    single: SingleInstance,
    shutdown: Shutdown,
) -> int:
    """The app, with the database file's integrity check after its first window (D8): a file
    found damaged then, or met damaged before the window showed, starts the app again with
    the check first, which moves it aside and says so."""
    check_first = False
    while True:
        try:
            return await _main(app, args, folder, single, shutdown, check_first=check_first)
        except (_FileDamaged, StoreCorruptError) as exc:
            if check_first:
                raise
            log.warning("the database is damaged (%s): starting again, checking it first", exc)
            check_first = True
        except _StartAgain as again:  # T4: signed in to a team, or signed out of one
            log.info("starting again: %s", again)
        shutdown.stop.clear()
        shutdown.running = False


async def _main(
    app: QApplication,
    args: argparse.Namespace,
    folder: Path,
    single: SingleInstance,
    shutdown: Shutdown,
    *,
    check_first: bool,
) -> int:
    theme = apply_theme(app)
    tasks = Tasks()
    stop = shutdown.stop
    async with contextlib.AsyncExitStack() as stack:
        stack.callback(tasks.cancel)
        log.info("start: loading frame")
        place = WindowPlace(QSettings(str(folder / PLACE_FILE), QSettings.Format.IniFormat))
        frame = _loading_frame(place)
        stack.callback(frame.close)
        frame.show()
        app.processEvents()  # paint it now: the service's start below keeps the loop busy
        painted_at = time.time()
        # After the first paint: listing the fonts costs a few tens of milliseconds.
        spell_out_emoji = use_emoji_font() is None  # no emoji font: spelled out, not boxes
        # The service (SQLAlchemy, the mail stack) loads only now, behind a painted frame.
        from services.api import Service
        from ui.bridge import ServiceBridge

        default_email: str | None = None
        workspace = None
        team = demo_team = None
        if getattr(args, "demo_team", False):
            from app.demo_team import start_demo_team

            log.info("start: demo team server for %s", folder)
            try:
                demo_team = await start_demo_team(folder)
            except DeskbellError as exc:
                return _cannot_start("Deskbell cannot start the demo team", exc, dialog=True)
            stack.push_async_callback(demo_team.close)
        if not args.demo and paths.database_url(args.database_url) is None:
            from app.team_start import saved_team

            try:
                team = saved_team(folder, secrets=demo_team.secrets if demo_team else None)
            except DeskbellError as exc:
                return _cannot_start("Deskbell cannot read its team account", exc, dialog=True)
        if team is not None:
            log.info("start: team replica of %s in %s", team.account.server_url, folder)
            try:
                service = await team.open(folder)  # the sync loads behind the window
            except DeskbellError as exc:
                return _cannot_start(
                    "Deskbell cannot open its data", exc, dialog=not args.quit_after_shown
                )
        elif args.demo:
            from app.demo import prepare_demo, run_bots

            log.info("start: demo workspace in %s", folder)
            workspace = await prepare_demo(data_dir=folder)
            stack.push_async_callback(workspace.close)
            service = workspace.service
            default_email = workspace.me
        else:
            log.info("start: service in %s", folder)
            try:
                # On a local file at the current schema the window shows first, on plain
                # sqlite3; the rest of the service opens behind it (`open_rest` below).
                service = await Service.open(
                    data_dir=folder,
                    url=paths.database_url(args.database_url),
                    check_file=check_first,
                    first_window=not check_first,
                )
            except StoreCorruptError as exc:
                if not check_first:
                    raise
                return _cannot_start(
                    "Deskbell cannot open its data", exc, dialog=not args.quit_after_shown
                )
            except DeskbellError as exc:
                return _cannot_start(
                    "Deskbell cannot open its data", exc, dialog=not args.quit_after_shown
                )
        stack.push_async_callback(_close_service, service)
        if team is not None:  # stopped before the replica closes
            team.with_sync(lambda sync: stack.push_async_callback(sync.stop))
        if service.notice:
            print(f"deskbell: {service.notice}", file=sys.stderr)
            if not args.quit_after_shown:
                _collect_garbage_from_now_on()  # the dialog waits for a person
                QMessageBox.information(None, "Deskbell", service.notice)

        try:
            if team is not None:
                try:
                    me: PersonInfo | None = await team.me(service)
                except AuthenticationError as exc:  # nothing fetched yet, and no token
                    return _cannot_start(
                        "Deskbell cannot open the team's workspace",
                        exc,
                        dialog=not args.quit_after_shown,
                    )
                except DeskbellError as exc:  # nothing fetched yet, and no server: say so
                    return _cannot_start(
                        "Deskbell cannot fetch your team's conversations; start it again "
                        "once the server can be reached",
                        exc,
                        dialog=not args.quit_after_shown,
                    )
            else:
                me = await _sign_in(
                    service,
                    folder=folder,
                    email=args.as_email or default_email,
                    just_show=args.quit_after_shown,
                )
        except _ShownOnly:
            return 0
        if me is None:
            return 1
        log.info("start: signed in as %s", me.email)

        # The change feed now; the mail parts once the window shows (they import the mail stack).
        log.info("start: change feed")
        await service.start(mail=False)
        bridge = ServiceBridge(service=service, me=me, tasks=tasks)
        await bridge.start()
        stack.callback(bridge.stop)

        # D1: the tray icon is shown even where no tray exists yet (an app autostarted before
        # the panel): Qt watches the tray selection and docks it when a tray host appears, and
        # again after one restarts. Whether a tray exists is asked when it matters (closing).
        log.info("start: tray icon")
        tray = Tray(base=app_icon())
        tray.set_count(bridge.counts.total)
        tray.show()
        stack.callback(tray.hide)
        if not Tray.available():
            log.info("no system tray yet: the count shows in the title and the badge")
        clock = SystemClock()
        wake_watch = WakeWatch(clock=clock, wake=service.wake, bus="SYSTEM")
        wake_watch.start()  # E8: deadlines are re-read after a resume from sleep
        stack.push_async_callback(wake_watch.aclose)
        try:
            pinger: Pinger | None = Pinger(player=make_sound_player(), clock=clock)
        except PlatformUnavailable as exc:
            log.warning("no sound: %s", exc)
            pinger = None

        log.info("start: main window")
        from ui.windows.main_window import MainWindow
        from ui.windows.update_check import UpdateChecker, UpdatePrefs

        update_prefs = UpdatePrefs(QSettings(str(folder / PLACE_FILE), QSettings.Format.IniFormat))

        window = MainWindow(
            service=service,
            bridge=bridge,
            theme=theme,
            tasks=tasks,
            now=clock.now,
            clock=clock,
            pinger=pinger,
            idle_probe=make_idle_probe(),
            system_notifiers=system_notifier_chain(tray=tray.icon, app_icon=app_icon_file()),
            keep_in_tray=Tray.available,
            login_starter=autostart,
            update_prefs=update_prefs,
            place=place,
            spell_out_emoji=spell_out_emoji,
            team_account=team.account if team is not None else None,
        )
        stack.callback(window.close)
        wake_watch.resumed.connect(window.refresh_dnd)  # Qt's timers stood still in sleep
        signing_out = asyncio.Event()
        if team is not None:

            def link(sync: TeamSync) -> None:
                # T5: the Messaging Center, new items and chat presence are the server's; its
                # client is built here, behind the first window, like the sync's.
                from services.api import RemoteService

                center = RemoteService(team.account.client(team.token), clock=clock)
                stack.push_async_callback(center.close)
                window.set_connection(sync, center=center)
                wake_watch.resumed.connect(sync.reconnect_now)  # catch up at once after sleep
                window.sign_out_requested.connect(
                    lambda: tasks.start(
                        _confirm_sign_out(window, sync, signing_out, stop), name="sign-out"
                    )
                )

            team.with_sync(link)  # made behind the window, with the rest of the service
        stack.push_async_callback(window.notifications.aclose)
        # Updates (opt-in): the menus' "Check for updates…", and a daily check when ticked.
        from app.cli import _version

        updates = UpdateChecker(
            prefs=update_prefs, current=_version(), now=clock.now, parent=window
        )
        stack.push_async_callback(updates.aclose)
        window.update_check_action.triggered.connect(updates.check_now)
        tray.update_check_requested.connect(updates.check_now)
        write_state = _state_writer(window, tray, painted_at=painted_at)

        def on_counts(counts: UnseenCounts) -> None:
            tray.set_count(counts.total)
            set_app_badge(app, counts.total)
            write_state(counts)

        bridge.counts_changed.connect(on_counts)
        if team is not None:  # the indicator's state too (the window updated it first)
            team.with_sync(
                lambda sync: stack.callback(
                    sync.subscribe_state(lambda _state: write_state(bridge.counts))
                )
            )
        tray.set_dnd(window.dnd.text)  # N6: from the stored settings, also after a restart
        window.dnd_changed.connect(tray.set_dnd)
        window.quit_requested.connect(stop.set)
        single.activation_requested.connect(window.bring_forward)
        stack.callback(single.activation_requested.disconnect, window.bring_forward)
        tray.open_requested.connect(window.bring_forward)
        tray.quit_requested.connect(stop.set)
        tray.dnd_requested.connect(
            lambda choice: tasks.start(
                service.set_do_not_disturb(person_id=me.id, choice=choice), name="dnd"
            )
        )
        # No aboutToQuit → stop: when Qt ends its event loop by itself, `_EventLoopRunner` takes
        # over, and the shut-down must run under it, not inside qasync's last turn.

        window.show()
        frame.close()
        await window.load()
        on_counts(bridge.counts)
        log.info("window shown with %d unseen", bridge.counts.total)
        _collect_garbage_from_now_on()
        try:
            await service.open_rest()  # writes made meanwhile wait for it
        except StoreCorruptError:
            raise  # starts again, checking the file first
        except DeskbellError as exc:
            return _cannot_start(
                "Deskbell cannot open its data", exc, dialog=not args.quit_after_shown
            )
        log.info("start: service open")
        if team is not None:
            await team.start_sync(service)  # in the background: the window works offline (T5)
        damaged = asyncio.Event()
        checking = (
            None
            if check_first
            else tasks.start(_check_file(service, damaged, stop), name="file-check")
        )
        if args.quit_after_shown:
            if checking is not None:
                await checking
            if damaged.is_set():
                raise _FileDamaged
            return 0
        if team is None:  # in a team only the server sends email (T3)
            log.info("start: background work (email fallback, outbox, mailbox)")
            await service.start_mail()
        if workspace is not None:
            tasks.start(run_bots(workspace, stop), name="demo-bots")
        elif demo_team is not None:
            from app.demo import run_bots as run_team_bots

            tasks.start(run_team_bots(demo_team.workspace, stop), name="demo-team-bots")
        else:
            never = asyncio.Event()
            updates.keep_checking(
                lambda: clock.sleep_until(clock.now() + timedelta(hours=1), never)
            )
        shutdown.running = True
        await stop.wait()
        log.info("shutting down")
        window.save_place()
        window.hide()
        await asyncio.wait_for(_drain(tasks), timeout=3)
        if damaged.is_set():
            raise _FileDamaged
    # Everything above is closed now, the replica included.
    if team is not None and signing_out.is_set():
        from app.team_start import sign_out

        left = await sign_out(team)
        if left:
            QMessageBox.information(None, "Deskbell", f"Signed out; {left}.")
        raise _StartAgain("signed out of the team")
    return 0


class _StartAgain(Exception):
    """The app starts over in the same process: signed in to a team, or signed out of one."""


async def _confirm_sign_out(
    window: MainWindow, sync: TeamSync, signing_out: asyncio.Event, stop: asyncio.Event
) -> None:
    """T4: ask, saying what stays and what would be lost; then quit to sign out."""
    waiting = await sync.pending_writes()
    text = (
        "Sign out of your team? The team's conversations are removed from this computer; "
        "they stay on the server."
    )
    if waiting:
        text += (
            f"\n\n{waiting} change(s) you made have not reached the server yet and will be "
            "lost. Stay signed in until Deskbell is back online to keep them."
        )
    box = QMessageBox(QMessageBox.Icon.Question, "Deskbell", text, parent=window)
    box.setObjectName("sign-out")
    sign_out_button = box.addButton("Sign out", QMessageBox.ButtonRole.AcceptRole)
    box.addButton(QMessageBox.StandardButton.Cancel)
    await _exec(box)  # not a nested event loop: the sync and the window keep running
    if box.clickedButton() is sign_out_button:
        signing_out.set()
        stop.set()


async def _check_file(service: Service, damaged: asyncio.Event, stop: asyncio.Event) -> None:
    """D8 after the first window: a damaged file stops this run to start again without it."""
    try:
        problem = await service.file_problem()
    except DeskbellError as exc:  # busy or unreadable now: the next start checks again
        log.warning("could not check the database file: %s", exc)
        return
    if problem is not None:
        log.warning("the database failed its integrity check (%s)", problem)
        damaged.set()
        stop.set()


def _cannot_start(what: str, exc: DeskbellError, *, dialog: bool) -> int:
    """Say why the app cannot start, in one line on stderr and (unless only testing a start)
    in a dialog, for a start from a menu where nobody reads stderr; returns the exit code."""
    print(f"deskbell: error: {exc}", file=sys.stderr)
    if dialog:
        QMessageBox.critical(None, "Deskbell", f"{what}:\n{exc}")
    return 1


async def _close_service(service: Service) -> None:
    await service.close()
    log.info("stop: service closed")


async def _drain(tasks: Tasks) -> None:
    with contextlib.suppress(Exception):
        await tasks.drain()


def _loading_frame(place: WindowPlace) -> QMainWindow:
    """The window's frame with a quiet "Loading…", shown while the service opens."""
    frame = QMainWindow()
    frame.setWindowTitle("Deskbell")
    place.restore(frame)  # where the main window will be, so the swap does not jump
    label = QLabel("Loading…")
    label.setAlignment(Qt.AlignmentFlag.AlignCenter)
    label.setEnabled(False)  # the theme's muted text colour
    frame.setCentralWidget(label)
    return frame


def _state_writer(
    window: MainWindow, tray: Tray, *, painted_at: float
) -> Callable[[UnseenCounts], None]:
    """Only with DESKBELL_TEST_STATE_FILE: the counts as the person sees them, as JSON.

    `painted_at` (epoch seconds) is the loading frame's first paint, for the start-up benchmark;
    the file's first write is the window shown with its data.
    """
    target = os.environ.get(STATE_FILE_ENV)

    def write(counts: UnseenCounts) -> None:
        if not target:
            return
        doc = {
            "title": window.windowTitle(),
            "total": counts.total,
            "internal": counts.internal,
            "external": counts.external,
            "tray": tray.count,
            "tray_available": Tray.available(),
            "tray_icon": _rect_list(tray.icon.geometry()),
            "tabs": [window.tabs.tabText(i) for i in range(window.tabs.count())],
            "connection": window.connection_indicator.accessibleName(),  # in a team (T5)
            "painted_at": painted_at,
            # D6: where the window and its Send button are, and the screen's room for them.
            "frame": _rect_list(window.frameGeometry()),
            "send": _rect_list(window.composer.send_button.rect(), of=window.composer.send_button),
            "available": _rect_list(window.screen().availableGeometry()),
        }
        tmp = Path(target + ".tmp")
        tmp.write_text(json.dumps(doc))
        tmp.replace(target)

    return write


def _rect_list(rect: QRect, *, of: QWidget | None = None) -> list[int]:
    """[x, y, w, h] in global coordinates (`of`: a widget whose own rect this is)."""
    if of is not None:
        rect = QRect(of.mapToGlobal(rect.topLeft()), rect.size())
    return [rect.x(), rect.y(), rect.width(), rect.height()]


# --- who is signed in -------------------------------------------------------------------------


class _ShownOnly(Exception):
    """`--quit-after-shown` met a dialog that waits for a person: it was shown, now leave."""


async def _sign_in(
    service: Service, *, folder: Path, email: str | None, just_show: bool = False
) -> PersonInfo | None:
    """`--as EMAIL`; else the user this machine used last; else the only user; else ask."""
    from services.api import PersonKind

    remembered = folder / SIGNED_IN_FILE
    from_memory = email is None and remembered.exists()
    if from_memory:
        email = remembered.read_text().strip() or None
    person: PersonInfo | None = None
    if email is not None:
        try:
            person = await service.person(email)
        except NotFoundError:
            if not from_memory:
                QMessageBox.warning(None, "Deskbell", f"There is no user {email} here.")
                return None
            # Not in this database (a damaged one was moved aside, a rescue): ask below.
    if person is not None:
        if person.kind != PersonKind.USER:
            QMessageBox.warning(None, "Deskbell", f"{email} is a customer, not a user.")
            return None
        remembered.write_text(person.email)
        return person
    users = await service.people(kind=PersonKind.USER)
    if len(users) == 1:
        chosen: PersonInfo | None = users[0]
    elif users:
        chosen = await _pick_user(users, just_show=just_show)
    else:
        chosen = await _first_run(service, folder=folder, just_show=just_show)
    if chosen is not None:
        remembered.write_text(chosen.email)
    return chosen


async def _exec(dialog: QDialog, *, just_show: bool = False) -> int:
    """Run a dialog without a nested event loop (qasync keeps running our tasks).

    `just_show`: paint it, close it and raise `_ShownOnly` (`--quit-after-shown`)."""
    _collect_garbage_from_now_on()  # a dialog may wait for a person for long
    if just_show:
        dialog.show()
        QApplication.processEvents()
        log.info("%s dialog shown", dialog.objectName() or "a")
        dialog.reject()
        raise _ShownOnly
    done: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    def on_finished(code: int) -> None:
        if not done.done():
            done.set_result(int(code))

    dialog.finished.connect(on_finished)
    dialog.open()
    return await done


async def _pick_user(users: list[PersonInfo], *, just_show: bool) -> PersonInfo | None:
    dialog = QInputDialog()
    dialog.setObjectName("who-are-you")
    dialog.setWindowTitle("Deskbell")
    dialog.setLabelText("Who are you?")
    dialog.setComboBoxItems([f"{u.name} <{u.email}>" for u in users])
    if await _exec(dialog, just_show=just_show) != QDialog.DialogCode.Accepted:
        return None
    labels = [f"{u.name} <{u.email}>" for u in users]
    return users[labels.index(dialog.textValue())]


async def _sign_in_to_team(folder: Path) -> bool:
    """The sign-in dialog; True once signed in and the account kept (token in the keyring)."""
    import socket

    from services.api import AccountStore, NewSignIn
    from ui.windows.sign_in import SignInDialog

    store = AccountStore(folder)

    def keep(new: NewSignIn) -> None:
        store.save(new.account, new.token)

    dialog = SignInDialog(device=f"Deskbell on {socket.gethostname()}", keep=keep)
    dialog.setObjectName("sign-in")
    return await _exec(dialog) == QDialog.DialogCode.Accepted


async def _first_run(service: Service, *, folder: Path, just_show: bool) -> PersonInfo | None:
    """The first start on an empty database: that person becomes the administrator."""
    from ui.windows.first_run import FirstRunChoice, FirstRunDialog

    dialog = FirstRunDialog()
    dialog.setObjectName("first-run")
    while await _exec(dialog, just_show=just_show) == QDialog.DialogCode.Accepted:
        if dialog.choice is FirstRunChoice.TEAM:
            if await _sign_in_to_team(folder):
                raise _StartAgain("signed in to a team")
            dialog = FirstRunDialog()  # cancelled: back to the choice
            dialog.setObjectName("first-run")
            continue
        name, email = dialog.result_person()
        try:
            return await service.add_person(email=email, name=name, is_admin=True)
        except DeskbellError as exc:
            QMessageBox.warning(dialog, "Deskbell", str(exc))
    return None
