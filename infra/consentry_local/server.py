"""`consentry local serve`: the local runtime as servers on 127.0.0.1 for people to poke at.

- moto's server on --moto-port: point the AWS CLI or boto3 at it (AWS_ENDPOINT_URL).
- the API on --port: the template's routes under /<stage>/..., as API Gateway would serve them.
- /_local/simulator/log: every message the carrier simulator accepted, as JSON Lines.
- POST /_local/text-in {"from": "+1...", "body": "STOP"}: a subscriber texts our number.
"""

import json
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from consentry_local.runtime import LocalRuntime


def serve(*, port: int, moto_port: int, workdir: Path, speed: float, tick_seconds: float = 0.2) -> None:
    from moto.server import ThreadedMotoServer

    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=moto_port, verbose=False)
    moto.start()
    runtime = LocalRuntime(
        workdir,
        start=datetime.now(UTC),
        endpoint_url=f"http://127.0.0.1:{moto_port}",
        clock_speed=speed,
        host=f"127.0.0.1:{port}",
    )
    runtime.start()
    stop = threading.Event()

    def pump() -> None:
        while not stop.is_set():
            try:
                while runtime.step():
                    pass
            except Exception as exc:  # keep serving; the failure is visible in the log
                print(f"local runtime step failed: {exc!r}", flush=True)
            time.sleep(tick_seconds)

    worker = threading.Thread(target=pump, name="local-runtime-pump", daemon=True)
    worker.start()
    server = ThreadingHTTPServer(("127.0.0.1", port), _handler_for(runtime))
    print(
        f"Consentry local runtime: API {runtime.base_url}  AWS endpoint http://127.0.0.1:{moto_port}",
        flush=True,
    )
    log_path = runtime.simulator.config.log_path
    print(f"Simulator log: http://127.0.0.1:{port}/_local/simulator/log  (file {log_path})")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        server.server_close()
        runtime.stop()
        moto.stop()


def _handler_for(runtime: LocalRuntime) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _reply(
            self,
            status: int,
            body: str,
            content_type: str = "application/json",
            headers: dict[str, str] | None = None,
        ) -> None:
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            # Cookies and security headers (CSP, CSRF cookie) pass through as API Gateway returns them.
            for name, value in (headers or {}).items():
                if name.lower() not in ("content-type", "content-length"):
                    self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def _body(self) -> bytes:
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def _dispatch(self) -> None:
            if self.path.startswith("/_local/"):
                self._local()
                return
            headers = {key: value for key, value in self.headers.items()}
            response = runtime.http(
                self.command, self.path, body=self._body(), headers=headers, source_ip=self.client_address[0]
            )
            self._reply(
                response.status,
                response.body,
                response.headers.get("Content-Type", "application/json"),
                response.headers,
            )

        def _local(self) -> None:
            if self.path == "/_local/simulator/log" and self.command == "GET":
                entries = runtime.simulator.log_entries()
                self._reply(200, "".join(json.dumps(e) + "\n" for e in entries), "application/x-ndjson")
            elif self.path == "/_local/text-in" and self.command == "POST":
                try:
                    request: dict[str, Any] = json.loads(self._body())
                    payload = runtime.text_in(str(request["from"]), str(request["body"]))
                except (ValueError, KeyError) as exc:
                    self._reply(400, json.dumps({"error": f"need JSON with from and body: {exc}"}))
                    return
                self._reply(202, json.dumps({"inboundMessageId": payload["inboundMessageId"]}))
            else:
                self._reply(404, json.dumps({"error": "unknown local endpoint"}))

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _dispatch

        def log_message(self, format: str, *args: Any) -> None:
            return

    return Handler
