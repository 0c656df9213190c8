"""Resident memory and CPU time from /proc (Linux), no third-party dependency."""

from __future__ import annotations

import os


def _status(pid: int | None, key: str) -> float:
    path = f"/proc/{pid or os.getpid()}/status"
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def rss_mb(pid: int | None = None) -> float:
    """Current resident set size of ``pid`` (default: this process), in MiB."""
    return _status(pid, "VmRSS")


def peak_rss_mb(pid: int | None = None) -> float:
    """Peak resident set size (``VmHWM``) of ``pid``, in MiB."""
    return _status(pid, "VmHWM")


def reset_peak_rss(pid: int) -> bool:
    """Reset ``pid``'s ``VmHWM`` to its current RSS (Linux ``clear_refs``, value 5), so that a
    later peak covers only what ran after this; False where that is not allowed."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    return True


def cpu_seconds(pid: int) -> float:
    """The user and system time ``pid`` has used, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
