"""People's accounts (三员分立): tables, secrets, the sign-in and account service."""

from ggzy.security.accounts.errors import AuthError
from ggzy.security.accounts.secrets import AccountSecrets
from ggzy.security.accounts.service import (
    AccountInfo,
    AccountService,
    Caller,
    Enrolment,
    NewAccount,
    SignIn,
    SignInPolicy,
    account_service,
)
from ggzy.security.accounts.tables import AccountTables, define_account_tables, define_api_token_table

__all__ = [
    "AccountInfo",
    "AccountSecrets",
    "AccountService",
    "AccountTables",
    "AuthError",
    "Caller",
    "Enrolment",
    "NewAccount",
    "SignIn",
    "SignInPolicy",
    "account_service",
    "define_account_tables",
    "define_api_token_table",
]
