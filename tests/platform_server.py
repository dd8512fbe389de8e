"""A loopback stand-in for the web platform, real HTTP on 127.0.0.1, for the integration tests.

It records every call (method, path, headers, body, the status it answered), answers the platform
API's POSTs with 2xx, can answer an error status (500...) or go away (its port closed) on demand and
come back on the same port, and serves a Pusher auth endpoint that signs private-channel
subscriptions with the Pusher app secret, as the real platform does (the secret stays there).

The agent loop's calls (issue 6) are served too: pairing (its answer's key is accepted from then
on), heartbeats, price batches, a job queue the test fills (``jobs/next`` hands them out in order,
204 when empty), job results, and EA artifacts behind a "signed" URL that needs no bearer key.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import re
import ssl
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

AUTH_PATH = "/pusher/auth"
ACK_PATH = re.compile(r"^/agents/(?P<agent>[^/]+)/commands/(?P<command>[^/]+)/ack$")
TRADES_PATH = re.compile(r"^/agents/(?P<agent>[^/]+)/trades$")
PAIR_PATH = "/agents/pair"
HEARTBEAT_PATH = re.compile(r"^/agents/(?P<agent>[^/]+)/heartbeat$")
PRICES_PATH = re.compile(r"^/agents/(?P<agent>[^/]+)/prices$")
NEXT_JOB_PATH = re.compile(r"^/agents/(?P<agent>[^/]+)/jobs/next$")
RESULT_PATH = re.compile(r"^/agents/(?P<agent>[^/]+)/jobs/(?P<job>[^/]+)/result$")
ARTIFACTS_PATH = re.compile(r"^/ea/versions/(?P<version>[^/]+)/artifacts$")
FILES_PATH = re.compile(r"^/files/(?P<version>[^/?]+)\.mq5\?sig=(?P<sig>\w+)$")


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    headers: dict[str, str]
    body: Any  # decoded JSON, a dict of form fields, or the raw text
    status: int
    time: float = field(default_factory=time.monotonic)

    @property
    def taken(self) -> bool:
        return 200 <= self.status < 300


class PlatformServer:
    def __init__(self, *, key: str, pusher_key: str = "", pusher_secret: str = "") -> None:
        self.key = key  # the bearer key every call must carry
        self.pusher_key = pusher_key
        self.pusher_secret = pusher_secret
        self.calls: list[Call] = []
        self.fail_status: int | None = None  # answer this to every API call (not to auth) while set
        self.fail_headers: dict[str, str] = {}
        self.refuse_paths: dict[str, int] = {}  # path -> status answered to it for good
        self.auth_status: int | None = None  # answer this to the auth endpoint while set
        self.auth_delay = 0.0  # seconds the auth endpoint takes
        self.delay = 0.0  # seconds every other call takes
        self.pair_answer: dict[str, Any] = {"agent_id": "agent-paired-1", "pairing_key": key}
        self.jobs: deque[dict[str, Any]] = deque()  # handed out by jobs/next, oldest first
        self.fail_after_job: int | None = None  # an outage (fail_status) from the next job handed out on
        self.artifacts: dict[str, str] = {}  # EA version id -> its .mq5 source
        self.port = 0
        self.tls: ssl.SSLContext | None = None  # serve https with this context
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ----------------------------------------------------------------- life

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    @property
    def auth_url(self) -> str:
        return self.url + AUTH_PATH

    def start(self) -> None:
        """Listen (again, on the same port once it had one)."""
        owner = self

        class Handler(_Handler):
            server_owner = owner

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        if self.tls is not None:
            self._server.socket = self.tls.wrap_socket(self._server.socket, server_side=True)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="platform", daemon=True)
        self._thread.start()

    @contextlib.contextmanager
    def serving(self) -> Iterator[PlatformServer]:
        """Listening for the ``with`` block, gone after it (a fixture's whole life)."""
        self.start()
        try:
            yield self
        finally:
            self.go_away()

    def go_away(self) -> None:
        """Stop listening: calls are refused as if the platform were down."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    # ----------------------------------------------------------------- what was called

    def record(self, call: Call) -> None:
        with self._lock:
            self.calls.append(call)

    def snapshot(self) -> list[Call]:
        with self._lock:
            return list(self.calls)

    def taken(self, pattern: re.Pattern[str]) -> list[Call]:
        """The POSTs to paths matching ``pattern`` that were answered 2xx, in the order taken."""
        return [c for c in self.snapshot() if c.method == "POST" and c.taken and pattern.match(c.path)]

    def acks(self) -> dict[str, list[dict[str, Any]]]:
        """Every ack taken, by command id (a list, so that one sent twice would show)."""
        found: dict[str, list[dict[str, Any]]] = {}
        for call in self.taken(ACK_PATH):
            match = ACK_PATH.match(call.path)
            assert match is not None
            found.setdefault(match["command"], []).append(call.body)
        return found

    def trades(self) -> list[dict[str, Any]]:
        return [c.body for c in self.taken(TRADES_PATH)]

    def queue_job(self, job_id: str, job_type: Any, input_data: Any) -> None:
        with self._lock:
            self.jobs.append({"id": job_id, "type": job_type, "input_data": input_data})

    def accepts(self, authorization: str | None) -> bool:
        keys = {self.key, str(self.pair_answer.get("pairing_key"))}
        return authorization in {f"Bearer {key}" for key in keys}

    def calls_to(self, pattern: re.Pattern[str], method: str = "POST") -> list[Call]:
        """Every call to paths matching ``pattern`` (taken or not), in order."""
        return [c for c in self.snapshot() if c.method == method and pattern.match(c.path)]

    def heartbeats(self) -> list[Call]:
        return self.taken(HEARTBEAT_PATH)

    def prices(self) -> list[Call]:
        return self.taken(PRICES_PATH)

    def results(self) -> dict[str, list[dict[str, Any]]]:
        """Every job result taken, by job id (a list, so that one sent twice would show)."""
        found: dict[str, list[dict[str, Any]]] = {}
        for call in self.taken(RESULT_PATH):
            match = RESULT_PATH.match(call.path)
            assert match is not None
            found.setdefault(match["job"], []).append(call.body)
        return found

    def pair_calls(self) -> list[Call]:
        return [c for c in self.snapshot() if c.path == PAIR_PATH]

    def auth_calls(self) -> list[Call]:
        return [c for c in self.snapshot() if c.path == AUTH_PATH]

    def sign(self, socket_id: str, channel: str) -> str:
        subject = f"{socket_id}:{channel}".encode()
        digest = hmac.new(self.pusher_secret.encode(), subject, hashlib.sha256).hexdigest()
        return f"{self.pusher_key}:{digest}"


class _Handler(BaseHTTPRequestHandler):
    server_owner: PlatformServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet: the calls are recorded instead
        return

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def _serve(self) -> None:
        owner = self.server_owner
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode() if length else ""
        body = _decode(raw, self.headers.get("Content-Type", ""))
        headers = {k.lower(): v for k, v in self.headers.items()}
        path = self.path
        status, answer, extra = self._answer(owner, path, headers, body)
        owner.record(Call(self.command, path, headers, body, status))
        if isinstance(answer, str):
            payload = answer.encode("utf-8")
        else:
            payload = json.dumps(answer).encode() if answer is not None else b""
        self.send_response(status)
        for name, value in extra.items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _answer(
        self, owner: PlatformServer, path: str, headers: dict[str, str], body: Any
    ) -> tuple[int, Any, dict[str, str]]:
        files = FILES_PATH.match(path)
        if files and self.command == "GET":  # a signed URL: its signature is its authorisation
            source = owner.artifacts.get(files["version"])
            if source is None or files["sig"] != _signature(files["version"]):
                return 403, {"error": "bad signature"}, {}
            return 200, source, {}
        if not owner.accepts(headers.get("authorization")):
            return 401, {"error": "unauthorized"}, {}
        if path == AUTH_PATH and self.command == "POST":
            if owner.auth_delay:
                time.sleep(owner.auth_delay)
            if owner.auth_status is not None:
                return owner.auth_status, {"error": "auth refused"}, {}
            if not isinstance(body, dict) or not body.get("socket_id") or not body.get("channel_name"):
                return 400, {"error": "socket_id and channel_name are required"}, {}
            return 200, {"auth": owner.sign(body["socket_id"], body["channel_name"])}, {}
        if owner.delay:
            time.sleep(owner.delay)
        if owner.fail_status is not None:
            return owner.fail_status, {"error": "platform trouble"}, dict(owner.fail_headers)
        if path in owner.refuse_paths:
            return owner.refuse_paths[path], {"error": "refused"}, {}
        if self.command == "POST" and TRADES_PATH.match(path):
            return 201, {"ok": True}, {}
        if self.command == "POST" and ACK_PATH.match(path):
            return 200, {"ok": True}, {}
        return self._agent_answer(owner, path, body)

    def _agent_answer(self, owner: PlatformServer, path: str, body: Any) -> tuple[int, Any, dict[str, str]]:
        if self.command == "POST" and path == PAIR_PATH:
            if not isinstance(body, dict) or body.get("pairing_key") != owner.key:
                return 403, {"error": "unknown pairing key"}, {}
            return 200, dict(owner.pair_answer), {}
        if self.command == "POST" and (HEARTBEAT_PATH.match(path) or PRICES_PATH.match(path)):
            return 200, {"ok": True}, {}
        if self.command == "POST" and RESULT_PATH.match(path):
            return 200, {"ok": True}, {}
        if self.command == "GET" and NEXT_JOB_PATH.match(path):
            with owner._lock:
                job = owner.jobs.popleft() if owner.jobs else None
                if job is not None and owner.fail_after_job is not None:
                    owner.fail_status, owner.fail_after_job = owner.fail_after_job, None
            return (204, None, {}) if job is None else (200, job, {})
        artifact = ARTIFACTS_PATH.match(path)
        if self.command == "GET" and artifact:
            version = artifact["version"]
            if version not in owner.artifacts:
                return 404, {"error": f"no EA version {version}"}, {}
            return 200, {"mq5_url": f"{owner.url}/files/{version}.mq5?sig={_signature(version)}"}, {}
        return 404, {"error": f"no route {self.command} {path}"}, {}


def _signature(version: str) -> str:
    return hashlib.sha256(f"signed:{version}".encode()).hexdigest()[:16]


def _decode(raw: str, content_type: str) -> Any:
    if "application/x-www-form-urlencoded" in content_type:
        return {k: v[0] for k, v in parse_qs(raw).items()}
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return raw
