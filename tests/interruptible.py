"""Child processes that a test interrupts with SIGINT."""

import signal


def default_sigint() -> None:
    """``preexec_fn`` for :class:`subprocess.Popen`: SIGINT's default action in the child.

    A test runner started as a background job without job control (``cmd &`` in a script)
    ignores SIGINT, and its children inherit that: a SIGINT sent to them would do nothing.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)
