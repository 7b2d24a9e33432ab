"""The server's upload limit, enforced while the body streams in (before any of it is kept)."""

FORM_OVERHEAD = 64 * 1024  # the multipart envelope and the form fields around the image's bytes


class UploadLimit:
    """ASGI middleware: a request body over `limit` bytes is answered 413 as soon as it is known, from Content-Length or
    from the bytes counted as they arrive, so that nothing larger is ever parsed or spooled to disk."""

    def __init__(self, app, limit: int):
        self.app, self.limit = app, limit

    async def _refuse(self, send) -> None:
        body = ('{"error": "the upload is over %s bytes; send a smaller photo"}' % f"{self.limit - FORM_OVERHEAD:,}").encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            return await self.app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.strip().isdigit() or int(length) > self.limit):
            return await self._refuse(send)
        state = {"seen": 0, "over": False, "refused": False}

        async def counted():
            if state["over"]:
                return {"type": "http.disconnect"}  # the app stops reading: what came is dropped
            message = await receive()
            if message["type"] == "http.request":
                state["seen"] += len(message.get("body", b""))
                if state["seen"] > self.limit:
                    state["over"] = True
                    return {"type": "http.disconnect"}
            return message

        async def guarded(message):
            if not state["over"]:
                return await send(message)
            if not state["refused"]:  # whatever the app answers to a cut-off body, the client is told why
                state["refused"] = True
                await self._refuse(send)

        try:
            await self.app(scope, counted, guarded)
        except Exception:
            if not state["over"]:
                raise
            if not state["refused"]:
                await self._refuse(send)
