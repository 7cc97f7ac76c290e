"""The operations (the one place where decisions are made), roles and presenters."""
