"""User-facing errors: one line that names the file and the fix, never a traceback."""


class StyleidError(Exception):
    """An error the user can fix; printed as one line by the stage runner."""


class ParamsError(StyleidError):
    """A bad key or value in params.yaml."""


class DataError(StyleidError):
    """A bad source, layout or image set."""
