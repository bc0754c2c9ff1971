"""The ``vtn`` command: serve, demo, and operator tools that read and change the store.

One module per command group (``serve``, ``demo``, ``vens``, ``ders``, ``log``,
``views``, ``groups``, ``events``, ``dispatches``, ``store``, ``certs``, ``api``), their
shared options and helpers in :mod:`vtn.cli.common`, the root group in
:mod:`vtn.cli.root`.
"""

from vtn.cli.root import main

__all__ = ["main"]
