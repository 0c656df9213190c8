"""convstore's benchmark suite (not part of the installed package): ``python -m bench``.

See docs/performance.md for the workloads, the raw-driver bound and how to run it.
"""
