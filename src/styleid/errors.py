"""User-facing errors: one line that names the file and the fix, never a traceback."""


class StyleidError(Exception):
    """An error the user can fix; printed as one line by the stage runner."""


class ParamsError(StyleidError):
    """A bad key or value in params.yaml."""


class DataError(StyleidError):
    """A bad source, layout or image set."""


def require(module: str, install: str):
    """Import an optional package, or stop with one line naming the command that installs it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise StyleidError(f"the package {module} is missing: {install} (or `make venv`, which installs requirements.lock)") from None


FACENET_INSTALL = "pip install 'facenet-pytorch==2.5.3'"  # the last release without torch<2.3 / numpy<2 pins
