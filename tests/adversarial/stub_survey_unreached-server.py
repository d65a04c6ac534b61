#!/usr/bin/env python3
"""An Ollama-like server on 127.0.0.1 that fails the survey (every GET and
/api/show answer 500, as a server still starting would) and whose one model
is a cloud stub: every chat reply names remote_host. Appends each request
body, one JSON line, to argv[2]; writes its port to argv[1]."""
import http.server
import json
import sys

LOG = sys.argv[2]


class Handler(http.server.BaseHTTPRequestHandler):
    def reply(self, status, obj):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self.reply(500, {"error": "starting"})

    def do_POST(self):
        raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        with open(LOG, "a") as f:
            f.write(json.dumps({"path": self.path, "body": raw.decode("utf-8", "replace")}) + "\n")
        if self.path != "/api/chat":
            self.reply(500, {"error": "starting"})
            return
        req = json.loads(raw)
        self.reply(200, {"model": req.get("model", ""), "remote_host": "https://ollama.com:443",
                         "remote_model": "coder:7b", "created_at": "2026-01-01T00:00:00Z",
                         "message": {"role": "assistant", "content": "OK"},
                         "done": True, "done_reason": "stop"})

    def log_message(self, *args):
        pass


server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
with open(sys.argv[1], "w") as f:
    f.write(str(server.server_address[1]))
server.serve_forever()
