"""A pydantic validation failure as one line a person can act on."""

from pydantic import ValidationError


def describe(exc: ValidationError) -> str:
    """`field.path: problem; other.field: problem` for every error."""
    return "; ".join(
        f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}" for error in exc.errors()
    )
