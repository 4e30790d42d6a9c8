"""Public tests of exercise 4: the converted echo server and its clean stop."""

import threading

import pytest
from convert_support import (
    STOP_LIMIT,
    closes,  # noqa: F401 - a fixture
    connect,
    echo,
    open_fds,
    running,
    stop_within,
    wait_until,
)


@pytest.mark.points(2)
def test_echo(student):
    with running(student) as server:
        with connect(server.port) as client:
            assert echo(client, b"hello khttpd") == b"hello khttpd", "the server must echo"
            assert echo(client, b"twice") == b"twice", "a connection serves many messages"


@pytest.mark.points(1)
def test_connections_are_work_items(student):
    with running(student) as server:
        clients = [connect(server.port) for _ in range(3)]
        for client in clients:
            assert echo(client, b"x") == b"x", "the server must echo"
        started = server.wq.stats().started
        for client in clients:
            client.close()
        assert started >= 3, "each connection must be a work item queued on server.wq"


@pytest.mark.points(3)
def test_idle_clients_do_not_starve_others(student):
    with running(student) as server:
        idle = [connect(server.port) for _ in range(20)]
        try:
            with connect(server.port, timeout=3) as active:
                assert echo(active, b"ping") == b"ping", (
                    "with 20 idle connections another client must still be served: is every "
                    "blocking call wrapped in blocking(), and max_active big enough?"
                )
        finally:
            for client in idle:
                client.close()


@pytest.mark.points(3)
def test_stop_is_quick_with_idle_clients(student):
    server = student.WorkqueueEchoServer().start()
    clients = [connect(server.port) for _ in range(10)]
    echo(clients[0], b"warm")
    took = stop_within(server, STOP_LIMIT, clients)
    for client in clients:
        client.close()
    assert took is not None, (
        f"stop() did not return within {STOP_LIMIT} s while idle clients were connected: "
        "shut their sockets down so the work items return"
    )


@pytest.mark.points(3)
def test_no_thread_left_behind(student):
    before = threading.active_count()
    server = student.WorkqueueEchoServer().start()
    clients = [connect(server.port) for _ in range(5)]
    for client in clients:
        echo(client, b"x")
    assert stop_within(server, 5, clients) is not None, "stop() hangs"
    for client in clients:
        client.close()
    left = wait_until(lambda: threading.active_count() <= before, 1.0)
    names = sorted(t.name for t in threading.enumerate())
    assert left, f"threads still alive after stop(): {names}"


@pytest.mark.points(2)
def test_no_socket_left_open(student):
    before = open_fds()
    server = student.WorkqueueEchoServer().start()
    clients = [connect(server.port) for _ in range(5)]
    for client in clients:
        echo(client, b"x")
    assert stop_within(server, 5, clients) is not None, "stop() hangs"
    for client in clients:
        client.close()
    assert wait_until(lambda: open_fds() <= before, 1.0), (
        f"{open_fds() - before} file descriptors still open after stop()"
    )


@pytest.mark.points(2)
def test_every_socket_closed_exactly_once(student, closes):  # noqa: F811
    server = student.WorkqueueEchoServer().start()
    clients = [connect(server.port) for _ in range(4)]
    for client in clients:
        echo(client, b"x")
    clients[0].close()  # one connection ends on its own before stop()
    wait_until(lambda: closes.closes(closes.accepted[0]) > 0, 2.0)
    assert stop_within(server, 5, clients) is not None, "stop() hangs"
    for client in clients[1:]:
        client.close()
    counts = [closes.closes(sock) for sock in closes.accepted]
    assert counts and all(c == 1 for c in counts), (
        f"each connection's socket must be closed exactly once; close() counts: {counts} "
        "(2 = the commit's double sock_release, 0 = a leak)"
    )
    assert closes.closes(server.listener) == 1, "the listening socket must be closed exactly once"
