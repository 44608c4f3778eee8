"""The CRM: objects, store, permissions, proposals, outbox and demo data."""
