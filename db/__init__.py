"""SQL storage: SQLAlchemy 2 models, engines and repositories (migrations live in migrations/)."""
