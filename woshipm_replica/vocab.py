"""Word lists and sentence templates of the replica's invented Chinese articles, read from ``data/vocab.json``.

Everything there is our own wording: the replica must not reproduce real articles. The lists are
large enough that two random articles share few character 5-grams (near-duplicate detection must
not see the whole corpus as one cluster). Lists are tuples, as the corpus draws from them by index.
"""

from __future__ import annotations

import json
from importlib import resources


def _frozen(value):
    return tuple(_frozen(part) for part in value) if isinstance(value, list) else value


_LISTS = {name: _frozen(words) for name, words in
          json.loads(resources.files(__package__).joinpath("data", "vocab.json").read_text(encoding="utf-8")).items()}

ROLES = _LISTS["roles"]
DOMAINS = _LISTS["domains"]
CONCEPTS = _LISTS["concepts"]
VERBS = _LISTS["verbs"]
MANNERS = _LISTS["manners"]
OUTCOMES = _LISTS["outcomes"]
CONNECTORS = _LISTS["connectors"]
NUMBERS = _LISTS["numbers"]
SENTENCES = _LISTS["sentences"]  # str.format templates: {role}, {role2}, {domain}, {concept}, {concept2}, ...
HEADINGS = _LISTS["headings"]
TITLES = _LISTS["titles"]
BOLD_LEADS = _LISTS["bold_leads"]
PERSON_NAMES = _LISTS["person_names"]
MEDIA_NAMES = _LISTS["media_names"]
EDITOR_NAMES = _LISTS["editor_names"]
PROMO_COURSES = _LISTS["promo_courses"]  # (slug, title, description)
PROMO_LINES = _LISTS["promo_lines"]
CODE_SNIPPETS = _LISTS["code_snippets"]  # (language, code)
