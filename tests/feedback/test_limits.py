"""The tracking server against hostile clients, over real sockets on 127.0.0.1: huge and slow bodies,
deep JSON, idle and trickling connections by the thousand."""

from __future__ import annotations

import json
import selectors
import socket
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import Engine

from pipeline.feedback.server import create_app
from pipeline.feedback.webhooks import MAX_BODY_BYTES
from pipeline.message.urls import recipient_links
from pipeline.workspace.settings import Settings
from tests.feedback.conftest import ServerThread, World
from tests.feedback.test_server import events, suppressions
from tests.feedback.test_webhooks import TOPIC, FakeSns

# Every wait below is for something the server does (answer, close); this only bounds a broken server.
NEVER_S = 20


def _address(base_url: str) -> tuple[str, int]:
    parts = urlsplit(base_url)
    assert parts.hostname and parts.port
    return parts.hostname, parts.port


def _connect(base_url: str) -> socket.socket:
    sock = socket.create_connection(_address(base_url))
    sock.settimeout(NEVER_S)
    return sock


def _status(sock: socket.socket) -> int:
    """The status code of the response the server sends on SOCK (a TimeoutError if it sends none)."""
    head = b""
    while b"\r\n" not in head:
        chunk = sock.recv(4096)
        if not chunk:
            raise AssertionError(f"connection closed without a response (got {head!r})")
        head += chunk
    return int(head.split(b" ", 2)[1])


def _closed_by_server(sock: socket.socket) -> bool:
    try:
        while chunk := sock.recv(4096):
            del chunk
    except ConnectionResetError:
        pass
    return True


@pytest.fixture
def webhook_url(settings: Settings, engine: Engine) -> Iterator[str]:
    settings.bounces.ses_topic_arns = [TOPIC]
    with ServerThread(create_app(settings, engine, sns_fetcher=FakeSns().fetch), settings) as url:
        yield url


def test_an_oversized_body_is_refused_before_it_is_read(webhook_url: str) -> None:
    # Announced: answered 413 at once, without waiting for 100 MB that never come.
    with _connect(webhook_url) as sock:
        sock.sendall(b"POST /webhooks/ses HTTP/1.1\r\nHost: t\r\nContent-Length: 104857600\r\n\r\n")
        assert _status(sock) == 413
    # Not announced (chunked): answered 413 once the limit is passed, while the client is still sending.
    with _connect(webhook_url) as sock:
        sock.sendall(b"POST /webhooks/ses HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunk = b"x" * 65536
        for _ in range(MAX_BODY_BYTES // len(chunk) + 2):
            sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        assert _status(sock) == 413  # the terminating chunk was never sent


def test_a_form_post_is_bounded_too(world: World, base_url: str, engine: Engine) -> None:
    sent = world.send(world.add_contact("ada@example.com"))
    url = recipient_links(world.settings, sent.delivery_id).unsubscribe_url
    padding = "x" * (128 * 1024)
    response = httpx.post(url, data={"List-Unsubscribe": "One-Click", "pad": padding})
    assert response.status_code == 413
    assert events(engine) == [] and suppressions(engine) == []


def test_deep_json_is_a_400_not_a_crash(webhook_url: str) -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    response = httpx.post(f"{webhook_url}/webhooks/ses", content=deep)
    assert response.status_code == 400 and "nested deeper" in response.text
    inner = json.dumps({"Type": "Notification", "TopicArn": TOPIC, "Message": "[" * 50 + "]" * 50})
    assert httpx.post(f"{webhook_url}/webhooks/ses", content=inner).status_code == 400


def test_a_body_that_never_arrives_is_timed_out(settings: Settings, engine: Engine, world: World) -> None:
    settings.tracking.body_timeout_s = 1
    sent = world.send(world.add_contact("ada@example.com"))
    with ServerThread(create_app(settings, engine), settings) as url:
        settings.tracking.base_url = url
        path = urlsplit(recipient_links(settings, sent.delivery_id).unsubscribe_url).path
        with _connect(url) as sock:
            sock.sendall(
                f"POST {path} HTTP/1.1\r\nHost: t\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                "Content-Length: 40\r\n\r\nList-Unsubscribe=".encode()
            )
            assert _status(sock) == 408
    assert suppressions(engine) == []


def test_idle_and_trickling_connections_are_closed_and_never_lock_out_a_request(
    settings: Settings, engine: Engine
) -> None:
    settings.tracking.header_timeout_s = 2
    settings.tracking.max_connections = 1000
    with ServerThread(create_app(settings, engine), settings) as url:
        idle = [_connect(url) for _ in range(1100)]
        try:
            # 1,100 sockets that never send a byte, beyond the cap: a real request still gets through.
            assert httpx.get(f"{url}/health", timeout=NEVER_S).status_code == 200

            # A client trickling header lines, one byte short of a request, is closed all the same.
            trickle = _connect(url)
            trickle.sendall(b"GET /health HTTP/1.1\r\nHost: t\r\n")
            trickle.settimeout(0.5)
            for _ in range(int(NEVER_S / 0.5)):
                try:
                    if trickle.recv(4096) == b"":
                        break
                except TimeoutError:
                    trickle.sendall(b"X-Slow: 1\r\n")
                except ConnectionResetError:
                    break
            else:
                raise AssertionError("a trickling client kept its connection")
            trickle.close()

            # Every idle socket is closed by the server (evicted at the cap, or at its header deadline).
            with selectors.DefaultSelector() as selector:
                for sock in idle:
                    selector.register(sock, selectors.EVENT_READ)
                open_ = set(idle)
                while open_:
                    ready = selector.select(timeout=NEVER_S)
                    assert ready, f"{len(open_)} idle connections still open"
                    for key, _ in ready:
                        sock = key.fileobj
                        assert isinstance(sock, socket.socket) and _closed_by_server(sock)
                        selector.unregister(sock)
                        open_.discard(sock)
            assert httpx.get(f"{url}/health", timeout=NEVER_S).status_code == 200
        finally:
            for sock in idle:
                sock.close()
