"""The model lifecycle: register built folders, promote and roll back aliases with history."""

from lifecycle.promotion import DEFAULT_ALIAS, current_actor, promote, rollback
from lifecycle.registration import register_model_folder

__all__ = ["DEFAULT_ALIAS", "current_actor", "promote", "register_model_folder", "rollback"]
