"""What the server serves, loaded once: the index and the model (in a background thread), searches against a snapshot
of the gallery, changes to it (gallery/edit.py) swapped in whole, and its people (gallery/people.py)."""

import base64
import io
import logging
import os
import threading
import time
from pathlib import Path

log = logging.getLogger(__name__)

THUMBNAIL = 192  # px, the longer side of the thumbnails and of the crop sent back


class Service:
    """The index and the model, loaded once in a background thread; searches wait for nothing but the model."""

    def __init__(self, index_dir: Path):
        self.index_dir, self.status, self.error = Path(index_dir), "loading", ""
        self.index = self.embedder = self._gallery_embedder = self._people = None
        self._lock = threading.Lock()  # MTCNN and PIL are not promised to be thread-safe: one embedding at a time
        self._edit_lock = threading.Lock()  # one gallery change at a time (gallery/edit.py also locks across processes)
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

        index = self.index  # this search's gallery: an edit swaps in a new one whole, never under a running search
        with self._lock:
            crop = self.embedder.crops([image])[0]  # aligned once: shown to the user and embedded
            results, how = rank(self.embedder.embed_crops([crop]), ["upload"], index, top_k)
        shown = crop.copy()
        shown.thumbnail((THUMBNAIL, THUMBNAIL))  # what the model saw, at the page's size: a large photo is not sent back whole
        buffer = io.BytesIO()
        shown.convert("RGB").save(buffer, format="JPEG", quality=90)
        return {"score": how, "matches": results[0]["matches"], "query_crop": "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()}

    def people(self, eps: float, k1: int, k2: int, min_samples: int) -> dict:
        """The current gallery's groups (largest first), each image with its row, id, name, label and confidence."""
        import numpy as np

        from styleid.gallery.people import group

        index = self.index
        key = (id(index), eps, k1, k2, min_samples)
        if self._people is None or self._people[0] != key:  # computed once a gallery and setting
            rows = index.index.reconstruct_n(0, index.index.ntotal)
            grouping = group(np.asarray(rows), eps, k1, k2, min_samples)
            groups = []
            for g in range(grouping.count):
                members = np.flatnonzero(grouping.groups == g)
                members = members[np.argsort(-grouping.confidence[members], kind="stable")]
                groups.append({"group": g, "images": [{"row": int(i), "id": index.entries[i]["id"], "name": index.paths[i],
                                                        "label": index.entries[i].get("label"), "confidence": round(float(grouping.confidence[i]), 3)}
                                                       for i in members]})
            self._people = (key, {"images": len(index.paths), "ungrouped": int((grouping.groups < 0).sum()), "groups": groups})
        return self._people[1]

    def add(self, name: str, data: bytes, label: str | None) -> dict:
        from styleid.gallery.edit import add_images
        from styleid.gallery.embedder import PhotoEmbedder
        from styleid.gallery.folder_index import FolderIndex

        with self._edit_lock:
            if self._gallery_embedder is None:  # gallery images go in as they are, as `styleid index` embeds them
                self._gallery_embedder = PhotoEmbedder.from_card(self.index.model_dir, align=False)
            entry = add_images(self.index_dir, [(name, data)], label, self._gallery_embedder)[0]
            self.index = FolderIndex.load(self.index_dir)
        return {"id": entry["id"], "name": entry.get("name", entry["path"]), "label": entry.get("label"), "gallery_images": len(self.index.paths)}

    def remove(self, image_id: str) -> dict:
        from styleid.gallery.edit import remove_images
        from styleid.gallery.folder_index import FolderIndex

        with self._edit_lock:
            entry = remove_images(self.index_dir, [image_id])[0]
            self.index = FolderIndex.load(self.index_dir)
        return {"removed": entry["id"], "name": entry.get("name", entry["path"]), "gallery_images": len(self.index.paths)}
