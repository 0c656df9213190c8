"""Parts of the ``convstore`` command: the one-line failure messages and the operator commands
(users, purge), each registered in :mod:`convstore.cli`."""
