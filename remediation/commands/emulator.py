"""``python -m remediation emulator``: a thin entry point to devtools/emulator/command.py.

The development tools live in devtools/, which is never deployed (.funcignore); in an
installation without them the CLI says the command is not available.
"""

from devtools.emulator.command import add_arguments, run

__all__ = ["add_arguments", "run"]
