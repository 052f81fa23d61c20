"""Every error the service raises on purpose, each with one name.

Each error maps to one HTTP status and one message a person understands. The
message is in English, marked with N_ so that the web layer can translate it
(Babel extracts N_ strings); the domain itself never imports Flask.
"""

from __future__ import annotations

import functools


def N_(message: str) -> str:
    """Mark a message for translation without translating it here."""
    return message


class QueueServiceError(Exception):
    """Base of the errors that reach a person: an HTTP status and a message."""

    http_status = 400
    message = N_("The request could not be processed.")
    # What the message's %(name)s placeholders stand for, if it has any.
    message_values: dict[str, object] = {}
    # Seconds after which the same request may succeed (sent as Retry-After), when known.
    retry_after: int | None = None
    # Members added to the API's problem document (RFC 9457 extension members).
    problem_members: dict[str, object] = {}

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail or self.message)
        self.detail = detail


class SettingsError(QueueServiceError):
    """A setting is missing or does not parse; the process must not start."""

    http_status = 500
    message = N_("The service is misconfigured.")


class SmsNotSent(QueueServiceError):
    """The SMS provider refused a message or could not be reached.

    `retryable` says whether the same message may go through later (the
    network, HTTP 5xx, HTTP 429) or never will as it is (a bad number, wrong
    credentials: HTTP 4xx). The detail never holds the whole phone number.
    """

    http_status = 502
    message = N_("The text message could not be sent.")

    def __init__(self, detail: str, *, retryable: bool) -> None:
        super().__init__(detail)
        self.retryable = retryable

    def __reduce__(self):  # the default pickling would call __init__ without `retryable`
        return functools.partial(type(self), retryable=self.retryable), (self.detail,)


class UnknownPrefecture(QueueServiceError):
    http_status = 404
    message = N_("There is no prefecture with this code.")


class UnknownProcedure(QueueServiceError):
    http_status = 404
    message = N_("There is no such procedure.")


class UnknownSite(QueueServiceError):
    http_status = 404
    message = N_("The prefecture has no site with this identifier.")


class UnknownSlot(QueueServiceError):
    http_status = 404
    message = N_("There is no such slot.")


class StoreUnavailable(QueueServiceError):
    """Redis cannot be reached: nothing is accepted rather than something lost."""

    http_status = 503
    message = N_("The service is temporarily unavailable. Nothing was recorded; please try again in a few minutes.")
    # A restarted Redis answers again within seconds; clients may retry after this.
    retry_after = 10


class ValidationFailed(QueueServiceError):
    """Some fields are wrong; `errors` maps each field name to its message."""

    http_status = 422
    message = N_("Some answers need to be corrected.")

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__()
        self.errors = errors


class InvalidText(QueueServiceError):
    """The request holds text that is not valid Unicode: a lone surrogate (no UTF-8
    can encode it), a non-character (U+FFFF, U+FDD0...), or bytes that are not UTF-8.
    `errors` names the field (as ValidationFailed does), for the API's problem."""

    http_status = 400
    message = N_("The request holds text that is not valid Unicode.")

    def __init__(self, field: str) -> None:
        super().__init__(
            N_("Some characters could not be read (such as a lone surrogate or U+FFFF). "
               "Remove them or type the text again, then send it again.")
        )
        self.errors = {field: N_("This field holds characters that are not valid Unicode.")}


class DuplicateRegistration(QueueServiceError):
    # Says nothing about the other registration: not whose, not when.
    http_status = 409
    message = N_(
        "This person is already registered in this waiting list. Use the link in the email you received "
        "to see your status; lost it? Ask for it again on the page “Find my registration” (/recover). "
        "One registration per person is enough: a second one would not raise your chances."
    )


class ContactCapReached(QueueServiceError):
    http_status = 409
    message = N_(
        "This email address or phone number is already used by as many registrations as allowed in this "
        "waiting list. Use another email address or phone number."
    )


class RegistrationNotFound(QueueServiceError):
    http_status = 404
    message = N_("This registration does not exist, or its data were deleted after the retention period.")


class InvalidLink(QueueServiceError):
    http_status = 404
    message = N_("This link is not valid. Check that you copied it whole, from the latest email we sent you.")


class UnknownShortLink(QueueServiceError):
    """An SMS's short link that the service never made, or forgot long ago."""

    http_status = 404
    message = N_("This link is not valid. Check that you copied it whole, or use the link in the latest email we "
                 "sent you.")


class ExpiredShortLink(QueueServiceError):
    """An SMS's short link past its time: the offer's deadline, or the booked appointment."""

    http_status = 410
    message = N_("This link from a text message has expired. The link in our emails, or your status page, still "
                 "shows where you stand.")


class ReplacedLink(QueueServiceError):
    """A status link made before the registration's email address changed."""

    http_status = 410
    message = N_(
        "This link no longer works: the email address of this registration was changed, and a new link was sent "
        "to the new address. Use the link in the latest email we sent you."
    )


class InvalidStatusToken(QueueServiceError):
    """The API was called without a status token, or with one that is not ours (answered with
    `WWW-Authenticate: Bearer`)."""

    http_status = 401
    message = N_(
        "Give the private status token of your registration as \"Authorization: Bearer <token>\": "
        "it is the t= of the status link in the latest email we sent you."
    )


class ExpiredLink(QueueServiceError):
    http_status = 410
    message = N_("This link has expired. If you had not confirmed your registration yet, please register again.")


class InvalidTransition(QueueServiceError):
    http_status = 409
    message = N_("This registration can no longer be changed in this way.")


class SiteInUse(InvalidTransition):
    http_status = 409
    message = N_("This site still has future slots: cancel them, or close the site instead.")


class NotAllowed(QueueServiceError):
    http_status = 403
    message = N_("Your account does not allow this.")


class MissingScope(NotAllowed):
    """An API token without the scope a route needs (the account itself might be allowed)."""

    message = N_("This API token does not have the scope this request needs.")

    def __init__(self, scope: str) -> None:
        super().__init__(N_("Create a token with this scope to send this request."))
        self.problem_members = {"required_scope": scope}


class LoginFailed(QueueServiceError):
    http_status = 401
    # The same message whether the email or the password is wrong.
    message = N_("Wrong email address or password.")


class LoginThrottled(QueueServiceError):
    """This client failed too often for this account: it (and only it) must wait."""

    http_status = 429
    message = N_("Too many failed attempts from your connection. Wait %(seconds)s s, then try again.")

    def __init__(self, retry_after: int) -> None:
        super().__init__()
        self.retry_after = retry_after
        self.message_values = {"seconds": retry_after}


class NotSignedIn(QueueServiceError):
    http_status = 401
    message = N_("Please sign in.")


class AccountExists(QueueServiceError):
    http_status = 409
    message = N_("An account with this email address already exists.")


class StaleDrawWorker(QueueServiceError):
    """A newer run of the same draw has taken over: this one must stop."""

    http_status = 409
    message = N_("This draw is being run by another worker.")


class UnknownDraw(QueueServiceError):
    http_status = 404
    message = N_("There is no draw with this identifier.")


class UnknownSchedule(QueueServiceError):
    http_status = 404
    message = N_("No schedule yet: no draw will run in this waiting list.")


class OfferDeadlinePassed(QueueServiceError):
    http_status = 409
    message = N_("The deadline to answer this offer has passed: the slot went to someone else.")


class CancellationTooLate(QueueServiceError):
    http_status = 409
    message = N_("It is too late to cancel this appointment online. Please contact the prefecture.")


class UnknownBooking(QueueServiceError):
    http_status = 404
    message = N_("No appointment has this code in your prefecture. Check the code and type it again.")


class UnknownMessage(QueueServiceError):
    http_status = 404
    message = N_("There is no message to an applicant with this identifier and channel in this pool.")


class UnknownToken(QueueServiceError):
    http_status = 404
    message = N_("You have no API token with this identifier.")


class CheckInNeedsOverride(QueueServiceError):
    """A booking checked in at a counter is for another day or another site: the agent must confirm."""

    http_status = 409
    message = N_("This appointment does not match this counter. Check with the applicant, then confirm the "
                 "check-in if it is right.")

    def __init__(self, warnings) -> None:
        super().__init__()
        self.warnings = list(warnings)
