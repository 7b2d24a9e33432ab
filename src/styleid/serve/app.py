"""The search service: FastAPI over a folder index (styleid index), the model loaded once, in the background.

GET  /health           {"status": "loading" | "ready" | "failed", ...}
POST /search           multipart "photo" (an image, at most max_upload_bytes) [+ top_k] -> ranked matches with scores,
                       the same-person verdict, and the aligned crop the model saw (a JPEG data URL, at most 192 px)
GET  /gallery/{row}    a thumbnail of gallery image `row`
GET  /people           who is in the gallery: its images grouped without labels (gallery/people.py; ?k1=&k2=&eps=&min_samples=)
GET  /gallery          the gallery, a page at a time (?offset=0&limit=100): each image's id, name, label
POST /gallery          multipart "file" [+ "label"]: add an image -> {"id", ...}; DELETE /gallery/{id} removes one.
                       Both change the index on disk in one step (gallery/edit.py) and searches move to it at once; they need
                       `Authorization: Bearer TOKEN` when the server has a token, and are refused (403) on a read-only server.
GET  /                 the search page (page.html: plain HTML and JavaScript, no build step)
Errors are JSON {"error": "..."} with 400 (not an image), 401 (no or wrong token), 403 (read-only), 413 (too big: refused while the body streams, before any of it
is kept), 404, 422 (a gallery image that cannot be shown), 503 (still loading or failed). Uploads are decoded by
styleid.images.decode_rgb, as `styleid search` decodes files: the same photo gets the same ranking and scores.
"""


import hmac
import io
import logging
import os
from pathlib import Path

from styleid.errors import require
from styleid.params.sections import SelfTrainParams
from styleid.serve.service import THUMBNAIL, Service
from styleid.serve.upload_limit import FORM_OVERHEAD, UploadLimit

log = logging.getLogger(__name__)

MAX_UPLOAD_BYTES = 10_000_000
MAX_TOP_K = 100
PEOPLE = SelfTrainParams()  # GET /people groups as self-training clusters, with its defaults


def create_app(index_dir: Path, max_upload_bytes: int = MAX_UPLOAD_BYTES, token: str | None = None, read_only: bool = False):
    """token: what POST and DELETE /gallery must bring (Authorization: Bearer TOKEN); read_only: refuse them all."""
    fastapi = require("fastapi", "pip install 'styleid[serve]'")
    require("multipart", "pip install 'styleid[serve]'")
    from fastapi import File, Form, Header, UploadFile
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

    def may_change(authorization: str | None) -> JSONResponse | None:
        if read_only:
            return error(403, "this server is read-only (it listens beyond 127.0.0.1 without a token); restart it with --token")
        if token and not hmac.compare_digest((authorization or "").encode(), f"Bearer {token}".encode()):
            return error(401, "changing the gallery needs the server's token: send Authorization: Bearer TOKEN")
        if service.status != "ready":
            return error(503, f"the index is {service.status}")
        return None

    @app.get("/people")
    async def people(k1: int = PEOPLE.k1, k2: int = PEOPLE.k2, eps: float = PEOPLE.eps, min_samples: int = PEOPLE.min_samples):
        if service.status != "ready":
            return error(503, f"the index is {service.status}")
        if not (k1 >= 1 and k2 >= 1 and min_samples >= 1 and 0 < eps < 1):
            return error(400, "k1, k2 and min_samples must be 1 or more, and eps between 0 and 1")
        import anyio

        return await anyio.to_thread.run_sync(service.people, eps, k1, k2, min_samples)

    @app.get("/gallery")
    def gallery_list(offset: int = 0, limit: int = 100):
        if service.status != "ready":
            return error(503, f"the index is {service.status}")
        from styleid.errors import StyleidError
        from styleid.gallery.edit import list_images

        try:
            return list_images(service.index, offset, limit)
        except StyleidError as exc:
            return error(400, str(exc))

    @app.post("/gallery")
    async def gallery_add(file: UploadFile = File(...), label: str | None = Form(None), authorization: str | None = Header(None)):
        if (refused := may_change(authorization)) is not None:
            return refused
        data = await file.read(max_upload_bytes + 1)
        if len(data) > max_upload_bytes:
            return error(413, f"the upload is over {max_upload_bytes:,} bytes; send a smaller image")
        import anyio

        from styleid.errors import StyleidError

        try:
            return await anyio.to_thread.run_sync(service.add, file.filename or "upload", data, label)
        except StyleidError as exc:
            return error(400, str(exc))

    @app.delete("/gallery/{image_id}")
    async def gallery_remove(image_id: str, authorization: str | None = Header(None)):
        if (refused := may_change(authorization)) is not None:
            return refused
        import anyio

        from styleid.errors import StyleidError

        if image_id not in {e["id"] for e in service.index.entries}:
            return error(404, f"no gallery image with id {image_id}")
        try:
            return await anyio.to_thread.run_sync(service.remove, image_id)
        except StyleidError as exc:
            return error(400, str(exc))

    @app.get("/gallery/{row}")
    def gallery(row: int):
        if service.status != "ready":
            return error(503, f"the index is {service.status}")
        index = service.index
        if not 0 <= row < len(index.paths):
            return error(404, f"no gallery image {row}")
        from styleid.images import BadImage, load_rgb

        path = index.file(row)
        if not path.is_file():
            return error(404, f"gallery image {row} is gone from {index.folder}; run `styleid index` again")
        try:
            img = load_rgb(path)
            img.thumbnail((THUMBNAIL, THUMBNAIL))
            buffer = io.BytesIO()
            img.save(buffer, format="JPEG", quality=85)
        except BadImage as exc:
            return error(422, f"gallery image {row} ({index.paths[row]}) cannot be shown: {exc}; run `styleid index` again")
        return Response(buffer.getvalue(), media_type="image/jpeg", headers={"Cache-Control": "no-cache"})

    @app.get("/", response_class=HTMLResponse)
    def page():
        return (Path(__file__).with_name("page.html")).read_text(encoding="utf-8")

    return app


LOOPBACK = ("127.0.0.1", "localhost", "::1")
TOKEN_ENV = "STYLEID_TOKEN"  # the token, when not given with --token (keeps it out of the process list)


def serve(index_dir: Path, host: str = "127.0.0.1", port: int = 8000, token: str | None = None) -> None:
    """Without a token the gallery may be changed only from this machine: bound beyond it, the server is read-only."""
    uvicorn = require("uvicorn", "pip install 'styleid[serve]'")
    token = token or os.environ.get(TOKEN_ENV) or None
    read_only = token is None and host not in LOOPBACK
    if read_only:
        log.info("serve: read-only (listening on %s without a token): POST and DELETE /gallery are refused; give --token to allow them", host)
    uvicorn.run(create_app(index_dir, token=token, read_only=read_only), host=host, port=port, log_level="warning")
