"""People's accounts (三员分立): tables, secrets, the sign-in and account service."""

from ggzy.security.accounts.errors import AuthError
from ggzy.security.accounts.secrets import AccountSecrets
from ggzy.security.accounts.service import (
    PRIVILEGED_ROLES,
    AccountInfo,
    AccountService,
    Approval,
    Caller,
    Enrolment,
    NewAccount,
    Notice,
    SignIn,
    SignInPolicy,
    account_service,
)
from ggzy.security.accounts.tables import AccountTables, define_account_tables, define_api_token_table

__all__ = [
    "PRIVILEGED_ROLES",
    "AccountInfo",
    "AccountSecrets",
    "AccountService",
    "AccountTables",
    "Approval",
    "AuthError",
    "Caller",
    "Enrolment",
    "NewAccount",
    "Notice",
    "SignIn",
    "SignInPolicy",
    "account_service",
    "define_account_tables",
    "define_api_token_table",
]
