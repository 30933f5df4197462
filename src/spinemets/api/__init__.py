"""REST API and web application (FastAPI).  Import :func:`spinemets.api.app.create_app`; kept empty so
that ``spinemets --help`` (which imports :mod:`spinemets.api.commands`) stays fast."""
