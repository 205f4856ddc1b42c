"""The pages' only style sheet (pages.css), inline, allowed by its hash in the Content-Security-Policy.

Built for a small phone first: one column, 16px+ text, 44px touch targets, a visible focus
ring for keyboards, and colours with at least 4.5:1 contrast (WCAG AA) on their backgrounds.
"""

import base64
import hashlib
from importlib import resources

CSS = resources.files("consentry.web").joinpath("pages.css").read_text(encoding="utf-8").strip()

STYLE_HASH = "sha256-" + base64.b64encode(hashlib.sha256(CSS.encode("utf-8")).digest()).decode("ascii")

CONTENT_SECURITY_POLICY = (
    f"default-src 'none'; style-src '{STYLE_HASH}'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)

SECURITY_HEADERS: dict[str, str] = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    # The preference page's URL is a credential: never send it on to the terms or privacy site.
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
}
