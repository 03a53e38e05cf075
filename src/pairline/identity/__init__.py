"""Who a bearer token says the user is: guest tokens and the operator's own JWTs."""

from pairline.identity.authenticator import Authenticator, Verified
from pairline.identity.jwks import JwksCache, SigningKey, parse_jwks
from pairline.identity.operator import OperatorTokens, public_user_id

__all__ = [
    "Authenticator",
    "JwksCache",
    "OperatorTokens",
    "SigningKey",
    "Verified",
    "parse_jwks",
    "public_user_id",
]
