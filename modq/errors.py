"""The one error tree of modq.

    ModerationError                 base of everything modq raises on purpose
    ├── InvalidContent              bad input: empty, oversized, not text, bad UTF-8, bad enum
    │   ├── UnsupportedContentType  a known content type that is not served yet (image, video)
    │   ├── PoisonMessage           a message no worker can decode or run: dead-lettered
    │   ├── StorageRejected         the database refuses the row (NUL, too long): never retried
    │   ├── TooLarge                a request body or batch past its limit (HTTP 413)
    │   └── InvalidReview           a review outcome that is malformed (bad label, no id)
    │       └── UnknownContent      a review for content modq never decided
    ├── ModelUnavailable            no model artifact, or it failed to load
    │   ├── UnknownModel            a registry name, version or alias that does not exist
    │   ├── ModelCircuitOpen        the model failed repeatedly: its breaker is open for now
    │   ├── ModelHung               a model call did not return within its deadline
    │   └── LabelMappingError       a model label with no canonical category, or a bad mapping
    ├── PromotionError              an alias move that cannot be made (nothing to roll back to)
    ├── ExperimentError             an A/B experiment that is ill-defined or cannot change state
    │   └── UnknownExperiment       an experiment id that does not exist
    ├── PolicyError                 a policy file that does not validate
    ├── UnknownJob                  a job id this API key never submitted, or long expired
    ├── DeadlineExceeded            no result within the request's deadline; the job goes on
    ├── JobFailed                   a job failed on the worker with an error outside this tree
    ├── JobExpired                  a job whose ``expires`` passed before it ran: dead-lettered
    ├── Unauthenticated             no API key, or one that is unknown or revoked
    ├── Forbidden                   a valid API key whose scopes do not allow the request
    ├── Overloaded                  the queue refuses more work for now
    │   └── RateLimited             this API key sent more than its rate; retry_after_s says when
    ├── BrokerUnavailable           the broker cannot be reached: nothing was enqueued
    └── StorageUnavailable          the database or cache cannot be reached: the job is retried

Each error has a stable ``code`` for clients and logs. Retry behaviour in Celery is mapped once,
in ``RETRYABLE`` below; the HTTP status table lives with the API.
"""

from __future__ import annotations


class ModerationError(Exception):
    """Base class: every error modq raises on purpose."""

    code = "moderation_error"

    def __init__(self, message: str, **details: object) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_dict(self) -> dict[str, object]:
        return {"code": self.code, "message": self.message, **self.details}


class InvalidContent(ModerationError):
    code = "invalid_content"


class PoisonMessage(InvalidContent):
    """A message a worker could not decode or validate (not modq's producer, or corrupted):
    parked in the dead-letter queue (docs/dead-letters.md), never run."""

    code = "poison_message"


class UnsupportedContentType(InvalidContent):
    code = "unsupported_content_type"


class StorageRejected(InvalidContent):
    """A permanent data error: retrying the same row can never succeed (db.storage_errors)."""

    code = "storage_rejected"


class TooLarge(InvalidContent):
    code = "too_large"


class ModelUnavailable(ModerationError):
    code = "model_unavailable"


class UnknownModel(ModelUnavailable):
    code = "unknown_model"


class ModelCircuitOpen(ModelUnavailable):
    """The model's circuit breaker is open and no fallback serves: retried later, without a
    model call (``retry_after_s``: until the next probe)."""

    code = "model_circuit_open"


class ModelHung(ModelUnavailable):
    """A model call that did not return within ``MODQ_MODEL_CALL_TIMEOUT_S`` (a wedged GPU, a
    stuck session): its jobs are retried, and the model's breaker opens."""

    code = "model_hung"


class LabelMappingError(ModelUnavailable):
    code = "label_mapping_error"


class InvalidReview(InvalidContent):
    code = "invalid_review"


class UnknownContent(InvalidReview):
    code = "unknown_content"


class PromotionError(ModerationError):
    code = "promotion_error"


class ExperimentError(ModerationError):
    code = "experiment_error"


class UnknownExperiment(ExperimentError):
    code = "unknown_experiment"


class PolicyError(ModerationError):
    code = "policy_error"


class UnknownJob(ModerationError):
    code = "unknown_job"


class DeadlineExceeded(ModerationError):
    code = "deadline_exceeded"


class JobFailed(ModerationError):
    code = "job_failed"


class JobExpired(ModerationError):
    """A job whose ``expires`` passed before a worker could run it: never run, parked in the
    dead-letter queue (reason ``expired``; tasks/schedules.py); `modq dlq retry` sends it again."""

    code = "job_expired"


class Overloaded(ModerationError):
    code = "overloaded"


class RateLimited(Overloaded):
    """Too many requests for one API key; ``retry_after_s`` is when one more will pass."""

    code = "rate_limited"

    def __init__(
        self, message: str = "rate limit exceeded", *, retry_after_s: float, **details: object
    ) -> None:
        super().__init__(message, retry_after_s=retry_after_s, **details)
        self.retry_after_s = retry_after_s


class Unauthenticated(ModerationError):
    code = "unauthenticated"


class Forbidden(ModerationError):
    code = "forbidden"


class BrokerUnavailable(ModerationError):
    code = "broker_unavailable"


class StorageUnavailable(ModerationError):
    code = "storage_unavailable"


# Worker-side failures worth retrying: the job goes back on its queue, nothing is lost.
RETRYABLE: tuple[type[ModerationError], ...] = (StorageUnavailable, ModelUnavailable)
