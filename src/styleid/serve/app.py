"""The search service: FastAPI over a folder index (styleid index), the model loaded once, in the background.

GET  /health           {"status": "loading" | "ready" | "failed", ...}
POST /search           multipart "photo" (an image, at most max_upload_bytes) [+ top_k] -> ranked matches with scores,
                       the same-person verdict, and the aligned crop the model saw (a PNG data URL)
GET  /gallery/{row}    a thumbnail of gallery image `row`
GET  /                 the search page (page.html: plain HTML and JavaScript, no build step)
Errors are JSON {"error": "..."} with 400 (not an image), 413 (too big: refused while the body streams, before any of it
is kept), 404, 422 (a gallery image that cannot be shown), 503 (still loading or failed). Uploads are decoded by
styleid.images.decode_rgb, as `styleid search` decodes files: the same photo gets the same ranking and scores.
"""


import base64
import io
import logging
import os
import threading
import time
from pathlib import Path

from styleid.errors import require

log = logging.getLogger(__name__)

MAX_UPLOAD_BYTES = 10_000_000
FORM_OVERHEAD = 64 * 1024  # the multipart envelope and the top_k field around the photo's bytes
MAX_TOP_K = 100
THUMBNAIL = 192  # px, the longer side


class Service:
    """The index and the model, loaded once in a background thread; searches wait for nothing but the model."""

    def __init__(self, index_dir: Path):
        self.index_dir, self.status, self.error = Path(index_dir), "loading", ""
        self.index = self.embedder = None
        self._lock = threading.Lock()  # MTCNN and PIL are not promised to be thread-safe: one embedding at a time
        threading.Thread(target=self._load, daemon=True).start()

    def _load(self) -> None:
        try:
            time.sleep(float(os.environ.get("STYLEID_SERVE_LOAD_DELAY", "0")))  # a test hook: hold the "loading" state this long
            from styleid.gallery.embedder import PhotoEmbedder
            from styleid.gallery.folder_index import FolderIndex

            self.index = FolderIndex.load(self.index_dir)
            self.embedder = PhotoEmbedder.from_card(self.index.model_dir)
            self.status = "ready"
        except Exception as exc:  # reported by /health and every /search, never a crash
            self.status, self.error = "failed", " ".join(str(exc).split())[:300]
            log.error("serve: cannot load %s: %s", self.index_dir, self.error)

    def search(self, image, top_k: int) -> dict:
        from styleid.gallery.search import rank

        with self._lock:
            crop = self.embedder.crops([image])[0]  # aligned once: shown to the user and embedded
            results, how = rank(self.embedder.embed_crops([crop]), ["upload"], self.index, top_k)
        buffer = io.BytesIO()
        crop.save(buffer, format="PNG")
        return {"score": how, "matches": results[0]["matches"], "query_crop": "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()}


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


def create_app(index_dir: Path, max_upload_bytes: int = MAX_UPLOAD_BYTES):
    fastapi = require("fastapi", "pip install 'styleid[serve]'")
    require("multipart", "pip install 'styleid[serve]'")
    from fastapi import File, Form, UploadFile
    from fastapi.responses import HTMLResponse, JSONResponse, Response

    app = fastapi.FastAPI(title="styleid", docs_url=None, redoc_url=None)
    app.add_middleware(UploadLimit, limit=max_upload_bytes + FORM_OVERHEAD)
    service = Service(index_dir)
    app.state.service = service

    def error(code: int, message: str) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=code)

    @app.get("/health")
    def health():
        body = {"status": service.status, "index": str(service.index_dir)}
        if service.status == "ready":
            body["gallery_images"] = len(service.index.paths)
        if service.error:
            body["error"] = service.error
        return JSONResponse(body, status_code=200 if service.status != "failed" else 503)

    @app.post("/search")
    async def search(photo: UploadFile = File(...), top_k: int = Form(10)):
        if service.status != "ready":
            return error(503, f"the index is {service.status}" + (f": {service.error}" if service.error else "; try again in a moment"))
        data = await photo.read(max_upload_bytes + 1)
        if len(data) > max_upload_bytes:
            return error(413, f"the upload is over {max_upload_bytes:,} bytes; send a smaller photo")
        from styleid.images import BadImage, decode_rgb

        try:
            image = decode_rgb(data)
        except BadImage as exc:
            return error(400, f"{photo.filename or 'the upload'}: {exc}; send a JPEG, PNG or WebP photo")
        import anyio

        return await anyio.to_thread.run_sync(service.search, image, max(1, min(top_k, MAX_TOP_K)))

    @app.get("/gallery/{row}")
    def gallery(row: int):
        if service.status != "ready":
            return error(503, f"the index is {service.status}")
        if not 0 <= row < len(service.index.paths):
            return error(404, f"no gallery image {row}")
        from styleid.images import BadImage, load_rgb

        path = service.index.folder / service.index.paths[row]
        if not path.is_file():
            return error(404, f"gallery image {row} is gone from {service.index.folder}; run `styleid index` again")
        try:
            img = load_rgb(path)
            img.thumbnail((THUMBNAIL, THUMBNAIL))
            buffer = io.BytesIO()
            img.save(buffer, format="JPEG", quality=85)
        except BadImage as exc:
            return error(422, f"gallery image {row} ({service.index.paths[row]}) cannot be shown: {exc}; run `styleid index` again")
        return Response(buffer.getvalue(), media_type="image/jpeg", headers={"Cache-Control": "max-age=3600"})

    @app.get("/", response_class=HTMLResponse)
    def page():
        return (Path(__file__).with_name("page.html")).read_text(encoding="utf-8")

    return app


def serve(index_dir: Path, host: str = "127.0.0.1", port: int = 8000) -> None:
    uvicorn = require("uvicorn", "pip install 'styleid[serve]'")
    uvicorn.run(create_app(index_dir), host=host, port=port, log_level="warning")
