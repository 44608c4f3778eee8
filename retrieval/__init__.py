"""Permission-aware hybrid search over CRM text on Qdrant, kept in step through the outbox.

Entry points: ``retrieval.search.search`` / ``search_logged``, ``retrieval.indexer.build`` / ``sync`` /
``follow``, and ``retrieval.service.get_service`` (the one owner of the embedded index per process).
"""
