"""The spinemets knowledge base: sources, statements and tables, versioned and cited."""

from spinemets.knowledge.loader import KnowledgeBase, check_kb, load_kb

__all__ = ["KnowledgeBase", "check_kb", "load_kb"]
