"""Authentication and users: the service layer under /api/auth, /api/users and /api/tokens.

``AuthService`` (service.py) is the one entry point; ``Principal`` and ``TokenPair``
(models.py) are what it hands back; errors.py holds the exceptions, each with ``status`` and
``error`` for the API's error map. No HTTP here.
"""

from .errors import (AuthError, AuthServiceError, ConflictError, ForbiddenError,
                     InvalidInputError, LockedOutError, NotFoundError, PasswordBusyError,
                     TotpRequiredError, WeakPasswordError)
from .models import ROLES, SCOPES, Principal, TokenPair
from .passwords import check_password_strength
from .service import AuthService

__all__ = [
    "AuthError", "AuthService", "AuthServiceError", "ConflictError", "ForbiddenError",
    "InvalidInputError", "LockedOutError", "NotFoundError", "PasswordBusyError", "Principal",
    "ROLES", "SCOPES", "TokenPair", "TotpRequiredError", "WeakPasswordError",
    "check_password_strength",
]
