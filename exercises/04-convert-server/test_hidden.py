"""Hidden tests of exercise 4 (kept by the instructor)."""

import threading
import time

import pytest
from convert_support import closes, connect, echo, stop_within  # noqa: F401


@pytest.mark.points(1)
def test_stop_twice_is_harmless(student, closes):  # noqa: F811
    server = student.WorkqueueEchoServer().start()
    with connect(server.port) as client:
        echo(client, b"x")
        assert stop_within(server, 5, [client]) is not None, "stop() hangs"
    assert stop_within(server, 2, []) is not None, "a second stop() must return at once"
    assert closes.closes(server.listener) == 1, "a second stop() closed the listener again"


@pytest.mark.points(1)
def test_connections_racing_stop_are_closed(student):
    before = threading.active_count()
    server = student.WorkqueueEchoServer().start()
    port = server.port
    stop_flag = threading.Event()
    clients = []

    def hammer() -> None:
        while not stop_flag.is_set() and len(clients) < 40:
            try:
                clients.append(connect(port, timeout=1))
            except OSError:
                time.sleep(0.005)

    thread = threading.Thread(target=hammer, daemon=True)
    thread.start()
    time.sleep(0.2)
    took = stop_within(server, 5, clients)
    stop_flag.set()
    thread.join(5)
    for client in clients:
        client.close()
    assert took is not None, "stop() hangs while connections keep arriving"
    deadline = time.monotonic() + 1
    while threading.active_count() > before and time.monotonic() < deadline:
        time.sleep(0.02)
    assert threading.active_count() <= before, "threads left after stopping under load"
