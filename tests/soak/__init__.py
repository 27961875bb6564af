"""The soak: hundreds of cells through nbclient on the real CLI, with faults mixed in (``./dev soak``)."""
