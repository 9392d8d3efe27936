"""One chunk of a long render, in a process of its own (`python -m pipeline.chunk_worker`).

The job arrives as one JSON line on stdin (pipeline.chunk_runners.job_to_json); the answer is lines on
stdout: `progress <frames done>` now and then, then `result {…}` or `error {"message": …}` (a
DhfError's one line). Anything else (a crash) shows as a non-zero exit and the last line of stderr.
The submitter keeps stdin open while it waits: when it closes (the submitter was killed, even with
SIGKILL), this process stops at once instead of rendering for nobody.
"""

from __future__ import annotations

import _thread
import json
import os
import sys
import threading
import time
from dataclasses import asdict

from config.errors import DhfError
from pipeline.chunk_runners import job_from_json
from pipeline.chunked import render_chunk

ORPHANED_EXIT = 3
GRACE_S = 10.0  # after the interrupt, before a hard exit


class Orphaned(KeyboardInterrupt):
    """The submitter is gone: stop like Ctrl-C (segment and encoder cleaned up, nothing published)."""


def _stop_when_orphaned(orphaned: threading.Event) -> None:
    """Block until stdin reaches end of file (the submitter closed it or died), then stop the render:
    the next progress report raises `Orphaned`. Also a simulated Ctrl-C for a render stuck between
    reports; that alone once let a chunk finish (exit 0) in a full test run, hence the flag. Hard exit
    if still running after `GRACE_S`."""
    sys.stdin.read()
    orphaned.set()
    _thread.interrupt_main()
    time.sleep(GRACE_S)
    os._exit(ORPHANED_EXIT)


def main() -> int:
    job = job_from_json(sys.stdin.readline())
    orphaned = threading.Event()
    threading.Thread(target=_stop_when_orphaned, args=(orphaned,), name="orphan-watch", daemon=True).start()

    def progress(index: int, done: int) -> None:
        if orphaned.is_set():
            raise Orphaned
        print(f"progress {done}", flush=True)

    try:
        result = render_chunk(job, progress)
    except DhfError as exc:
        print("error " + json.dumps({"message": str(exc)}), flush=True)
        return 2
    except KeyboardInterrupt:  # Ctrl-C in the terminal, or the submitter is gone
        return ORPHANED_EXIT
    print("result " + json.dumps(asdict(result)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
