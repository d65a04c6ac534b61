#!/usr/bin/env python3
"""A one-route OpenAI-dialect server on 127.0.0.1 whose streamed chat replies
name no model (some proxies and servers leave "model" out): the case that
"expect_model": "exact" cannot check. Every other path answers 404. Writes the
port it got to the file named by argv[1]; stops on SIGTERM."""
import http.server
import json
import sys


class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.path != "/v1/chat/completions":
            self.send_error(404)
            return
        chunks = [{"choices": [{"index": 0, "delta": {"role": "assistant", "content": "ok"}}]},
                  {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}]
        body = "".join("data: %s\n\n" % json.dumps(c) for c in chunks) + "data: [DONE]\n\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())

    def do_GET(self):
        self.send_error(404)

    def log_message(self, *args):
        pass


server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
with open(sys.argv[1], "w") as f:
    f.write(str(server.server_address[1]))
server.serve_forever()
