"""Dashboard pages: each module has ``PATH``, ``NAME``, ``layout(**query)`` and its callbacks.

Component ids are prefixed with the page's name (``compare-``, ``retention-`` ...); the shared
selection is in :mod:`dashboard.shell`.
"""
