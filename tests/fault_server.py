"""A scripted OpenAI-compatible /v1/chat/completions server for the tests of API clients (the
judge's and generation's): one behaviour per request, to check retries, timeouts, dropped
connections and that an API key never leaks. The `server_factory` fixture (tests/conftest.py)
starts them and closes them after the test."""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FaultServer:
    """A /v1/chat/completions server on 127.0.0.1 that plays `script` (one behaviour per request,
    then `default`): ok, slow, echo-key (the Authorization header in the reply and its usage),
    500-echo, 429, 429-forever, 500, garbage, hang, 401-echo, refuse-json,
    refuse-json-else-500, and dropped connections: cut-body (a Content-Length larger than the body,
    then close), reset (part of the body, then a TCP reset), hangup (close before any reply),
    bad-status (a status line that is not HTTP). `reply` is the text an ok request gets, or a
    function of the request body that returns it."""

    def __init__(self, script=(), default="ok", reply='{"reason": "clearer", "verdict": "2"}'):
        self.script, self.default, self.reply = list(script), default, reply
        self.requests: list[dict] = []
        self.release = threading.Event()
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server.lock:
                    server.requests.append({"path": self.path, "auth": self.headers.get("Authorization"),
                                            "body": body})
                    action = server.script.pop(0) if server.script else server.default
                server.play(self, action, body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def play(self, handler, action, body):
        if action == "hang":
            self.release.wait(10)
            return
        if action == "slow":
            time.sleep(0.3)
            action = "ok"
        if action.startswith("refuse-json") and "response_format" in body:
            return self.send(handler, 400, b'{"error": {"message": "response_format is not supported"}}')
        if action in ("cut-body", "reset", "hangup", "bad-status"):
            return self.drop(handler, action)
        if action in ("echo-key", "500-echo"):
            return self.echo(handler, action)
        key = (handler.headers.get("Authorization") or "").removeprefix("Bearer ")
        content = self.reply(body) if callable(self.reply) else self.reply
        status, payload, headers = {
            "429": (429, b'{"error": "rate limited"}', {"Retry-After": "0.05"}),
            "429-forever": (429, b'{"error": "come back tomorrow"}', {"Retry-After": "86400"}),
            "500": (500, b"internal error", {}),
            "refuse-json-else-500": (500, b"internal error", {}),
            "garbage": (200, b"<html>proxy error</html>", {}),
            "401-echo": (401, f'{{"error": "bad key {handler.headers.get("Authorization")}"}}'.encode(), {}),
            "400-long-echo": (400, f'{{"error": "{"x" * 180} {key}"}}'.encode(), {}),  # the key near the cut
        }.get(action, (200, json.dumps({"choices": [{"message": {"role": "assistant", "content": content},
                                                     "finish_reason": "stop"}],
                                        "usage": {"prompt_tokens": 100, "completion_tokens": 9}}).encode(), {}))
        self.send(handler, status, payload, headers)

    @staticmethod
    def echo(handler, action):
        """Send the Authorization header back: in an error body, or in the reply and its usage."""
        auth = handler.headers.get("Authorization") or ""
        key = auth.removeprefix("Bearer ")
        if action == "500-echo":
            return FaultServer.send(handler, 500, f"upstream rejected {key} ({auth})".encode())
        content = json.dumps({"verdict": "2", "reason": f"your key {key} works; header {auth} seen"})
        usage = {"prompt_tokens": 100, "completion_tokens": 9, "echo": key, key: 1,
                 "details": {"auth": auth, "seen": [key, f"x{key}x"]}}
        payload = {"choices": [{"message": {"role": "assistant", "content": content}}], "usage": usage}
        FaultServer.send(handler, 200, json.dumps(payload).encode())

    @staticmethod
    def drop(handler, action):
        """Break the connection in the way `action` names (see the class docstring)."""
        handler.close_connection = True
        if action == "hangup":
            return
        if action == "bad-status":
            handler.wfile.write(b"SPAM 200 OK\r\n\r\n")
            return
        body = b'{"choices": [{"message": {"content": "{\\"verdict\\": \\"2\\"}"}}]}'
        handler.wfile.write(f"HTTP/1.1 200 OK\r\nContent-Length: {len(body) + 500}\r\n\r\n".encode() + body[:20])
        if action == "reset":  # SO_LINGER 0: close() sends RST instead of FIN
            handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            handler.connection.close()

    @staticmethod
    def send(handler, status, payload, headers=None):
        handler.send_response(status)
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        handler.wfile.write(payload)

    def close(self):
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()
