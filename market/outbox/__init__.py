"""The transactional outbox: side effects recorded in the same transaction as the write."""
