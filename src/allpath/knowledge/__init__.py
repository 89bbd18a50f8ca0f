"""The knowledge base: packs of cited facts and rules, loaded and checked as a whole."""

from allpath.knowledge.loader import (
    DEFAULT_PACKS,
    KnowledgeBase,
    KnowledgeError,
    available_packs,
    load_kb,
)

__all__ = ["DEFAULT_PACKS", "KnowledgeBase", "KnowledgeError", "available_packs", "load_kb"]
