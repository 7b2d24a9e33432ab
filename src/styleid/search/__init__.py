"""Search: FAISS index building and querying."""
