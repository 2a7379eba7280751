"""CLMS: a child-labour monitoring and remediation system.

The package is the application's home; importing it loads nothing (the app factory is
:func:`clms.app.create_app`, which ``wsgi.py`` and ``clms`` the command call). ``ARCHITECTURE.md``
at the root of the repository is the map of the parts and of what each may import.
"""
