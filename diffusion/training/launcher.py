"""Run N local workers of a command under MultiWorkerMirroredStrategy on 127.0.0.1.

    python train.py --local-workers 2 --data … --run RUN      # → 2 × train.py --strategy multiworker

Each worker gets its own TF_CONFIG (free loopback ports, task index i; worker 0 is the chief).
If one worker dies the others are stopped (SIGTERM, then SIGKILL after a grace period) instead
of hanging in a collective; the launcher exits with the first failing worker's code.
Relaunching the same command resumes from the chief's last checkpoint.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

GRACE_SECONDS = 20


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def tf_config(ports, index) -> str:
    return json.dumps({"cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
                       "task": {"type": "worker", "index": index}})


def launch(argv: list[str], workers: int) -> int:
    """Starts `workers` copies of `python argv…` with TF_CONFIG; returns the job's exit code."""
    ports = free_ports(workers)
    procs = []
    for i in range(workers):
        env = {**os.environ, "TF_CONFIG": tf_config(ports, i)}
        out = None if i == 0 else subprocess.DEVNULL        # the chief speaks for the job
        procs.append(subprocess.Popen([sys.executable, *argv], env=env, stdout=out))

    def stop_all(signum=None, frame=None):
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
    previous = {s: signal.signal(s, stop_all) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        while True:
            codes = [p.poll() for p in procs]
            failed = [c for c in codes if c not in (None, 0)]
            if failed or all(c == 0 for c in codes):
                break
            time.sleep(0.2)
        if failed:
            print(f"error: a worker exited with code {failed[0]}; stopping the others",
                  file=sys.stderr)
            stop_all()
            deadline = time.time() + GRACE_SECONDS
            for p in procs:
                try:
                    p.wait(timeout=max(0.1, deadline - time.time()))
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
            return failed[0] if failed[0] > 0 else 1
        return 0
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
