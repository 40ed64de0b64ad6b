"""The one error tree of modq.

    ModerationError                 base of everything modq raises on purpose
    ├── InvalidContent              bad input: empty, oversized, not text, bad UTF-8, bad enum
    │   ├── UnsupportedContentType  a known content type that is not served yet (image, video)
    │   └── InvalidReview           a review outcome that is malformed (bad label, no id)
    │       └── UnknownContent      a review for content modq never decided
    ├── ModelUnavailable            no model artifact, or it failed to load
    │   ├── UnknownModel            a registry name, version or alias that does not exist
    │   └── LabelMappingError       a model label with no canonical category, or a bad mapping
    ├── PromotionError              an alias move that cannot be made (nothing to roll back to)
    ├── ExperimentError             an A/B experiment that is ill-defined or cannot change state
    │   └── UnknownExperiment       an experiment id that does not exist
    ├── PolicyError                 a policy file that does not validate
    ├── Overloaded                  the queue refuses more work for now
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


class UnsupportedContentType(InvalidContent):
    code = "unsupported_content_type"


class ModelUnavailable(ModerationError):
    code = "model_unavailable"


class UnknownModel(ModelUnavailable):
    code = "unknown_model"


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


class Overloaded(ModerationError):
    code = "overloaded"


class BrokerUnavailable(ModerationError):
    code = "broker_unavailable"


class StorageUnavailable(ModerationError):
    code = "storage_unavailable"


# Worker-side failures worth retrying: the job goes back on its queue, nothing is lost.
RETRYABLE: tuple[type[ModerationError], ...] = (StorageUnavailable, ModelUnavailable)
