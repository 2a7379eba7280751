"""OpenRosa server (placeholder while being written)."""


def register(app):
    pass
