"""Bot knowledge: sources, chunks, embeddings and retrieval."""
