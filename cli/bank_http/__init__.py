"""The HTTP adapter (``bank serve``): a JSON API over the one ``BankService``.

It maps requests in and results out and holds no business rule. Importing
this package loads nothing heavy: ``bank_http.keys`` needs only SQLAlchemy
(the CLI's ``bank apikey`` and the schema use it); the web framework is
loaded by ``bank_http.app`` and ``bank_http.server``, which only
``bank serve`` imports.
"""
