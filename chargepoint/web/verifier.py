"""The driver's verifier: ONE self-contained HTML file (`chargepoint verifier-page -o
verify.html`, also served at /verify) that checks signed readings in the browser, offline.

Its script and style are inline; the page's own Content-Security-Policy allows exactly those
two (by their SHA-256) and nothing else: no network, no other script. The same policy is
sent as a header at /verify.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from importlib import resources

import jinja2
from markupsafe import Markup


@dataclass(frozen=True)
class VerifierPage:
    html: str
    csp: str  # the Content-Security-Policy the page carries (and /verify sends)


def _static(name: str) -> str:
    return (resources.files("chargepoint.web") / "static" / name).read_text(encoding="utf-8")


def _hash(text: str) -> str:
    return (
        "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode() + "'"
    )


def verifier_page(key: str = "") -> VerifierPage:
    """The page; `key` fills in the key field (the page also takes `#key=...` from its URL)."""
    script = _static("verify.js")
    css = _static("verify.css")
    for name, text, tag in (("verify.js", script, "</script"), ("verify.css", css, "</style")):
        if tag in text.lower():
            raise ValueError(f"{name} must not contain {tag}")
    csp = (
        f"default-src 'none'; script-src {_hash(script)}; style-src {_hash(css)}; "
        "img-src data:; form-action 'none'; base-uri 'none'"
    )
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("chargepoint.web", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    html = env.get_template("verify.html").render(
        csp=csp, css=Markup(css), script=Markup(script), key=key
    )
    return VerifierPage(html, csp + "; frame-ancestors 'none'")
