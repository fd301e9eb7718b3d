"""The ``evsim`` command's entry point (``python -m evsim`` and the installed script).

``import evsim`` loads nothing but the version, so this runs before NumPy, Numba and the
rest of evsim load: Ctrl-C meanwhile (the first second or so) ends the installed command as
any interruption does, with one line and exit code 130, not a traceback. (Under
``python -m evsim`` the message is the same, but the exit status is sometimes death by
SIGINT: runpy is between the interpreter and this function.)
"""

import sys


def main() -> int:
    """Import the command and run it (:func:`evsim.cli.main`); 130 if interrupted meanwhile."""
    try:
        from evsim.cli import main as command
    except KeyboardInterrupt:
        print("evsim: interrupted", file=sys.stderr)
        return 130
    return command()


if __name__ == "__main__":
    sys.exit(main())
