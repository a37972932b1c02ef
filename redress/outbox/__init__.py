"""Writing the outbox: batch folders, bank files, notification files, and reading them back."""
