"""The kernel's application: ipykernel's, with its shutdown race worked around.

After a ``shutdown_request``, ipykernel's control thread flushes stdout and stderr through the
iopub thread and waits for it. Meanwhile the main thread, its loop stopped by that same request,
returns from ``start()`` and the interpreter exits: the atexit handlers stop the iopub thread and
only then close the application, which joins the control thread. When the control thread's flush
has not got through before iopub stopped, nothing will send it, and the kernel hangs until Jupyter
sends it SIGTERM (2.5 s into a restart; about one restart in three on 2 busy cores, ipykernel 7.4).
Joining the control thread as soon as the main loop stops, while iopub still runs, lets the flush
finish, and the kernel exits as soon as its work is done.
"""

from __future__ import annotations

from ipykernel.kernelapp import IPKernelApp

__all__ = ["ClaudeKernelApp"]


class ClaudeKernelApp(IPKernelApp):
    def start(self) -> None:
        super().start()  # type: ignore[no-untyped-call]
        # The main loop has stopped: the kernel is shutting down.
        control = self.control_thread
        if control is not None and control.is_alive():
            control.stop()
            control.join(timeout=5)
