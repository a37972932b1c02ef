"""Expected errors: the CLI prints their message as one line and exits non-zero."""


class RedressError(Exception):
    """An error the user can act on (bad policy, missing folder, locked warehouse...)."""
