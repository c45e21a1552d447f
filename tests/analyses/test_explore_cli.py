"""`interp explore` as a user starts it: a real server process on loopback, answering, stopped by Ctrl-C."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_interp_explore_serves_on_loopback_and_stops_on_ctrl_c():
    port = free_port()
    command = [sys.executable, "-c", "from analyses.cli import main; main()", "explore", "--model", "minilm",
               "--port", str(port)]
    server = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        deadline = time.time() + 120
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/models", timeout=5) as response:
                    models = json.loads(response.read())["models"]
                break
            except OSError:
                assert server.poll() is None, f"interp explore exited: {server.stderr.read()}"
                assert time.time() < deadline, "interp explore did not answer within 120 s"
                time.sleep(0.5)
        assert {m["name"]: m["loaded"] for m in models}["minilm"] is True
        page = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5).read().decode()
        assert "interp explorer" in page and "http://" not in page.replace("http://127.0.0.1", "")
        request = urllib.request.Request(f"http://127.0.0.1:{port}/api/prompt",
                                         data=json.dumps({"model": "minilm", "prompt": "a mole"}).encode(),
                                         headers={"Content-Type": "application/json"})
        assert json.loads(urllib.request.urlopen(request, timeout=30).read())["tokens"] == ["[CLS]", "a", "mole", "[SEP]"]
    finally:
        server.send_signal(signal.SIGINT)
        code = server.wait(timeout=30)
    stderr = server.stderr.read()
    assert f"interp explorer: http://127.0.0.1:{port}/" in stderr
    assert "warning" not in stderr.lower() and "Traceback" not in stderr, stderr
    assert code == 0, stderr
