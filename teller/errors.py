"""Teller's domain errors: one tree, each leaf with a stable ``code``.

::

    TellerError(code)
    ├── InvalidInput ........... 400/422  MalformedRequest, InvalidAmount, InvalidAddress, InvalidCard,
    │                                     InvalidIdempotencyKey, InvalidIban, UnknownChain, UnknownAsset,
    │                                     InvalidNationalCode, InvalidContact, IdentityMismatch,
    │                                     CardOwnerMismatch, IbanOwnerMismatch
    ├── NotAuthenticated ....... 401      InvalidInitData, ExpiredInitData, InvalidToken, UntrustedGateway
    ├── Forbidden .............. 403      WithdrawalsFrozen, ForeignContact, IdentityRequired
    ├── NotFound ............... 404
    ├── Conflict ............... 409      InsufficientFunds, IdempotencyConflict, CardExists,
    │                                     HoldAlreadyResolved, AlreadyCredited, IbanExists,
    │                                     IdentityVerified, ContactRequired, NationalCodeTaken,
    │                                     AssignmentContradicts
    ├── LimitExceeded .......... 403/429  DailyLimitExceeded, RateLimited (ProviderLimit)
    ├── PayloadTooLarge ........ 413
    ├── UpstreamUnavailable .... 502/503  ChainUnavailable (UnknownBlock), ProviderUnavailable,
    │                                     TelegramUnavailable, EventsUnavailable, ServiceUnavailable
    │                                     (FeatureDisabled, WithdrawalsPaused)
    └── StartFailed ............ never HTTP: the process cannot start; its message is the one line the
                                          command line prints, naming the setting to change

A bug (AssertionError, anything else) is not a TellerError: the HTTP layer answers 500 with no
details and the actor that hit it restarts. The mapping to HTTP statuses lives in
``teller/http/errors.py``; nothing else knows about statuses. Data lives in class attributes.
"""

from __future__ import annotations

import os
from typing import Any

__all__ = [
    "TellerError",
    "InvalidInput",
    "MalformedRequest",
    "InvalidAmount",
    "InvalidAddress",
    "InvalidIdempotencyKey",
    "InvalidCard",
    "InvalidIban",
    "UnknownChain",
    "UnknownAsset",
    "InvalidNationalCode",
    "InvalidContact",
    "IdentityMismatch",
    "CardOwnerMismatch",
    "IbanOwnerMismatch",
    "NotAuthenticated",
    "InvalidInitData",
    "ExpiredInitData",
    "InvalidToken",
    "UntrustedGateway",
    "Forbidden",
    "WithdrawalsFrozen",
    "ForeignContact",
    "IdentityRequired",
    "NotFound",
    "Conflict",
    "InsufficientFunds",
    "IdempotencyConflict",
    "CardExists",
    "HoldAlreadyResolved",
    "AlreadyCredited",
    "IbanExists",
    "IdentityVerified",
    "ContactRequired",
    "NationalCodeTaken",
    "AssignmentContradicts",
    "LimitExceeded",
    "DailyLimitExceeded",
    "RateLimited",
    "ProviderLimit",
    "PayloadTooLarge",
    "UpstreamUnavailable",
    "ChainUnavailable",
    "UnknownBlock",
    "ProviderUnavailable",
    "TelegramUnavailable",
    "EventsUnavailable",
    "ServiceUnavailable",
    "FeatureDisabled",
    "WithdrawalsPaused",
    "StartFailed",
]


class TellerError(Exception):
    """Base of every expected (domain) error. ``code`` is stable and machine-readable."""

    code: str = "error"
    default_message: str = "request failed"

    def __init__(self, message: str | None = None, **details: Any) -> None:
        self.message = message or self.default_message
        self.details = details
        super().__init__(self.message)

    def __reduce__(self) -> tuple[Any, ...]:  # keep pickling/copying working with kwargs
        return (_rebuild, (type(self), self.message, self.details))


def _rebuild(cls: type[TellerError], message: str, details: dict[str, Any]) -> TellerError:
    return cls(message, **details)


class InvalidInput(TellerError):
    code = "invalid_input"
    default_message = "invalid input"


class MalformedRequest(InvalidInput):
    code = "malformed_request"
    default_message = "the request is malformed"


class InvalidAmount(InvalidInput):
    code = "invalid_amount"
    default_message = "invalid amount"


class InvalidIdempotencyKey(InvalidInput):
    code = "invalid_idempotency_key"
    default_message = "the Idempotency-Key header is not 1 to 64 visible ASCII characters"


class InvalidAddress(InvalidInput):
    code = "invalid_address"
    default_message = "invalid address"


class InvalidCard(InvalidInput):
    code = "invalid_card"
    default_message = "invalid card number"


class InvalidIban(InvalidInput):
    code = "invalid_iban"
    default_message = "invalid IBAN"


class UnknownChain(InvalidInput):
    code = "unknown_chain"
    default_message = "unknown chain"


class UnknownAsset(InvalidInput):
    code = "unknown_asset"
    default_message = "unknown asset"


class InvalidNationalCode(InvalidInput):
    code = "invalid_national_code"
    default_message = "invalid national code"


class InvalidContact(InvalidInput):
    """The shared contact is not Telegram's (bad signature), is malformed, or is too old."""

    code = "invalid_contact"
    default_message = "the shared contact is invalid or too old; share it again"


class IdentityMismatch(InvalidInput):
    code = "identity_mismatch"
    default_message = "this national code is not registered to your mobile number"


class CardOwnerMismatch(InvalidInput):
    code = "card_owner_mismatch"
    default_message = "this card is not registered to your national code"


class IbanOwnerMismatch(InvalidInput):
    code = "iban_owner_mismatch"
    default_message = "this IBAN is not registered to your national code"


class NotAuthenticated(TellerError):
    code = "not_authenticated"
    default_message = "authentication required"


class InvalidInitData(NotAuthenticated):
    code = "invalid_init_data"
    default_message = "init data is invalid"


class ExpiredInitData(NotAuthenticated):
    code = "expired_init_data"
    default_message = "init data is too old"


class InvalidToken(NotAuthenticated):
    code = "invalid_token"
    default_message = "the token is invalid or expired"


class UntrustedGateway(NotAuthenticated):
    code = "untrusted_gateway"
    default_message = "X-Telegram-Id is accepted only from a trusted gateway"


class Forbidden(TellerError):
    code = "forbidden"
    default_message = "not allowed"


class WithdrawalsFrozen(Forbidden):
    """This user's withdrawals of this asset wait for an operator (e.g. a credited deposit was reorged out)."""

    code = "withdrawals_frozen"
    default_message = "withdrawals of this asset are frozen for your account until support reviews it"


class ForeignContact(Forbidden):
    code = "foreign_contact"
    default_message = "share your own contact, not someone else's"


class IdentityRequired(Forbidden):
    code = "identity_required"
    default_message = "verify your identity (mobile and national code) first"


class NotFound(TellerError):
    code = "not_found"
    default_message = "not found"


class Conflict(TellerError):
    code = "conflict"
    default_message = "conflict"


class InsufficientFunds(Conflict):
    code = "insufficient_funds"
    default_message = "insufficient funds"


class IdempotencyConflict(Conflict):
    code = "idempotency_conflict"
    default_message = "the idempotency key was already used with different content"


class CardExists(Conflict):
    code = "card_exists"
    default_message = "this card is already registered"


class HoldAlreadyResolved(Conflict):
    code = "hold_already_resolved"
    default_message = "the hold was already posted or voided"


class AlreadyCredited(Conflict):
    code = "already_credited"
    default_message = "this statement line was already credited to another user"


class IbanExists(Conflict):
    code = "iban_exists"
    default_message = "this IBAN is already registered"


class IdentityVerified(Conflict):
    code = "identity_verified"
    default_message = "your identity is already verified; the mobile number can no longer change"


class ContactRequired(Conflict):
    code = "contact_required"
    default_message = "share your mobile number from Telegram first"


class NationalCodeTaken(Conflict):
    code = "national_code_taken"
    default_message = "this national code is already verified on another account"


class AssignmentContradicts(Conflict):
    """Ops tried to credit a suspense line to a user whose verified cards or IBANs say it is someone else's."""

    code = "assignment_contradicts_line"
    default_message = "the line's card or IBAN belongs to another verified user"


class LimitExceeded(TellerError):
    code = "limit_exceeded"
    default_message = "limit exceeded"


class DailyLimitExceeded(LimitExceeded):
    code = "limit_exceeded"
    default_message = "the daily withdrawal limit would be exceeded"


class RateLimited(LimitExceeded):
    code = "rate_limited"
    default_message = "too many requests"

    def __init__(self, message: str | None = None, *, retry_after_s: int = 1, **details: Any) -> None:
        super().__init__(message, retry_after_s=retry_after_s, **details)
        self.retry_after_s = retry_after_s


class ProviderLimit(RateLimited):
    code = "provider_limit"
    default_message = "the verification provider's inquiry limit is reached; try again later"


class PayloadTooLarge(TellerError):
    code = "payload_too_large"
    default_message = "the request body is too large"


class UpstreamUnavailable(TellerError):
    code = "upstream_unavailable"
    default_message = "an upstream service is unavailable"


class ChainUnavailable(UpstreamUnavailable):
    code = "chain_unavailable"
    default_message = "the chain node is unavailable"


class UnknownBlock(ChainUnavailable):
    """The node does not know a block hash asked for: it lags behind, or a reorg dropped the block."""

    code = "unknown_block"
    default_message = "the chain node does not know this block"


class ProviderUnavailable(UpstreamUnavailable):
    code = "provider_unavailable"
    default_message = "the payment provider is unavailable"


class TelegramUnavailable(UpstreamUnavailable):
    code = "telegram_unavailable"
    default_message = "Telegram is unavailable"


class EventsUnavailable(UpstreamUnavailable):
    code = "events_unavailable"
    default_message = "the event stream (NATS JetStream) is unavailable"


class ServiceUnavailable(UpstreamUnavailable):
    code = "service_unavailable"
    default_message = "the service is temporarily unavailable"


class FeatureDisabled(ServiceUnavailable):
    code = "feature_disabled"
    default_message = "this feature is not configured on this server"


class WithdrawalsPaused(ServiceUnavailable):
    """A chain's (or every) withdrawal is paused for an operator: an incident or a failed ledger check."""

    code = "withdrawals_paused"
    default_message = "withdrawals are paused while an operator reviews an incident; try again later"


class StartFailed(TellerError):
    """Teller cannot start: a port is taken, the database does not answer, the dev chain did not start.

    The message is one line for a person: the cause and the setting that changes it, with no secret in it
    (a URL is shown as its ``scheme://host:port``)."""

    code = "start_failed"
    default_message = "Teller could not start"

    @classmethod
    def cannot_listen(cls, exc: OSError | OverflowError, *, host: str, port: int, setting: str,
                      what: str = "") -> StartFailed:
        """A listening socket could not be opened; ``setting`` names what moves it."""
        errno = getattr(exc, "errno", None)
        reason = os.strerror(errno).lower() if errno and errno > 0 else str(exc)  # < 0: getaddrinfo's codes
        return cls(f"cannot listen on {host}:{port}{what}: {reason}; set {setting}")
