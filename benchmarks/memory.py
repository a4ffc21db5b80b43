"""The one memory method of the benchmarks: resident-set figures of this process from /proc/self/status.

Peak memory of a contender = ``status_kib("VmHWM")`` after it ran minus ``status_kib("VmRSS")`` before, each
contender in its own fresh process (or after resetting the peak with ``/proc/self/clear_refs``).
"""

from __future__ import annotations


def status_kib(field: str) -> int:
    """``field`` ("VmRSS", "VmHWM", ...) of /proc/self/status in KiB."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")
