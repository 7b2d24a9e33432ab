"""`styleid serve`: an HTTP JSON API over a folder index, and one small search page on it."""
