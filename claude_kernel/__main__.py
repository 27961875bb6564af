"""``python -m claude_kernel -f CONNECTION_FILE`` runs the kernel; ``... install`` registers it."""

import sys

if len(sys.argv) > 1 and sys.argv[1] == "install":
    from .install import main

    main(sys.argv[2:])
else:
    from .kernel import ClaudeKernel
    from .kernel_app import ClaudeKernelApp

    ClaudeKernelApp.launch_instance(kernel_class=ClaudeKernel)
