"""`comms serve` while its database goes away and comes back: 503s, a /health in plain words, SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import httpx
from sqlalchemy.engine import make_url

from pipeline.message.urls import recipient_links, recipient_tracking
from pipeline.storage.engines import make_engine, upgrade
from pipeline.workspace.settings import load_settings
from tests.feedback.conftest import SECRET, World
from tests.feedback.test_server import events, suppressions
from tests.service.conftest import wait_until
from tests.support.cli import COMMS
from tests.support.smtp_server import free_port
from tests.support.tcp_proxy import TcpProxy

DRIVER_WORDS = ("psycopg", "connection", "refused", "5432", "127.0.0.1", "postgres")


def _answers(url: str) -> bool:
    try:
        httpx.get(url, timeout=2)
    except httpx.TransportError:
        return False
    return True


def test_the_tracking_server_answers_503_while_the_database_is_down_and_stops_on_sigterm(
    workspace_dir: Path, postgres_url: str
) -> None:
    upgrade(postgres_url)
    real = make_url(postgres_url)
    with TcpProxy((real.host or "127.0.0.1", real.port or 5432)) as proxy:
        proxied = real.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        base = f"http://127.0.0.1:{free_port()}"
        env = {"COMMS_SECRET": SECRET, "COMMS_DATABASE_URL": proxied, "COMMS_TRACKING_URL": base}
        settings = load_settings(workspace_dir, env)
        engine = make_engine(postgres_url)
        world = World(settings, engine)
        sent = world.send(world.add_contact("ada@example.com"))
        links = recipient_links(settings, sent.delivery_id)
        pixel = recipient_tracking(settings, sent.delivery_id).open_url

        server = subprocess.Popen(
            [*COMMS, "serve", "--port", base.rsplit(":", 1)[1]],
            cwd=workspace_dir,
            env={**os.environ, **env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            wait_until(lambda: _answers(f"{base}/health"), 60, "comms serve to listen")
            assert httpx.get(f"{base}/health").json() == {"status": "ok", "database": "ok"}
            assert httpx.get(links.unsubscribe_url).status_code == 200

            proxy.cut()
            for response in (
                httpx.get(links.unsubscribe_url),
                httpx.post(links.unsubscribe_url, data={"List-Unsubscribe": "One-Click"}),
                httpx.get(pixel),
                httpx.get(links.view_online_url),
            ):
                assert response.status_code == 503, response.text
                assert response.headers["retry-after"].isdigit()
                assert "Traceback" not in response.text
            health = httpx.get(f"{base}/health")
            assert health.status_code == 503
            assert health.json() == {"status": "error", "database": "unreachable"}
            assert not any(word in health.text for word in DRIVER_WORDS)

            proxy.restore()
            wait_until(lambda: httpx.get(f"{base}/health").status_code == 200, 30, "the database to be back")
            assert (
                httpx.post(links.unsubscribe_url, data={"List-Unsubscribe": "One-Click"}).status_code == 200
            )
            assert len(suppressions(engine)) == 1 and [e.kind for e in events(engine)] == ["unsubscribe"]

            proxy.cut()
            assert httpx.get(f"{base}/health").status_code == 503
            server.send_signal(signal.SIGTERM)
            _, log = server.communicate(timeout=30)
            assert server.returncode == 0, log
            assert "Traceback" not in log
        finally:
            if server.poll() is None:
                server.kill()
                server.wait()
            engine.dispose()
