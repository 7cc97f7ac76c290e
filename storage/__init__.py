"""Tables, the async engine and session factory, repositories and migrations."""
