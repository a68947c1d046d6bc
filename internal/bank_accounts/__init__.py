"""The accounts server: open, freeze, unfreeze, close; holders and products.

Implements ``bank_core.ports.AccountsPort``. Every query is scoped to one
institution: another institution's account id is simply absent.
"""

from bank_accounts.server import AccountsServer
from bank_accounts.tables import Account

__all__ = ["Account", "AccountsServer"]
