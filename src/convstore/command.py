"""The ``convstore`` console script: the CLI (:mod:`convstore.cli`), or, when the command needs
an extra that is not installed, one line naming it (the CLI itself needs the server extra)."""

from __future__ import annotations

import sys

from convstore.extras import MissingExtra, missing_extra


def main() -> None:
    """Console-script entry point."""
    what = " ".join(["convstore", *[arg for arg in sys.argv[1:2] if not arg.startswith("-")]])
    try:
        from convstore.cli import main as cli

        cli()
    except MissingExtra as error:
        sys.exit(str(error))
    except ModuleNotFoundError as error:
        missing = missing_extra(error, what)
        if missing is None:
            raise
        sys.exit(str(missing))
