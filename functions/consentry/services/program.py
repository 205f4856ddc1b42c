"""The deployment's program, loaded and validated once per process."""

from functools import cache

from consentry.config import settings
from consentry.domain.program import Program, load_program


@cache
def current_program() -> Program:
    config = settings()
    return load_program(
        brand=config.brand_name,
        support_contact=config.support_contact,
        terms_url=config.terms_url,
        privacy_url=config.privacy_url,
        topics_json=config.program_topics,
    )
