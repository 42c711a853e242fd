"""Alembic's environment: migrations run on the connection ``shared.service.database.upgrade`` hands
over (``config.attributes["connection"]``), or on ``sqlalchemy.url`` for Alembic's own command."""
from alembic import context
from sqlalchemy import create_engine

from shared.service.tables import metadata

config = context.config


def _run(connection) -> None:
    context.configure(connection=connection, target_metadata=metadata,
                      render_as_batch=connection.dialect.name == "sqlite")  # SQLite alters tables by copying
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    engine = create_engine(config.get_main_option("sqlalchemy.url"))
    with engine.begin() as own:
        _run(own)
    engine.dispose()
