"""Starting a child that a test interrupts with SIGINT (Ctrl-C)."""

from __future__ import annotations

import signal


def default_sigint() -> None:
    """``preexec_fn`` for such a child: a shell's background job (`make test &`) starts with
    SIGINT ignored, the child would inherit that and never see the Ctrl-C the test sends."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
