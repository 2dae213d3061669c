"""Message templates: stored per tenant, rendered in a sandbox, never executing template code.

Templates are Jinja2 text rendered by ``SandboxedEnvironment`` (no attribute access to
internals, no imports, no calls to unsafe methods) with ``StrictUndefined``: a parameter the
template uses but the caller did not give is a ``TemplateError`` naming it, never an empty
string in a customer's message. The HTML part is autoescaped, the text part and the subject
are not (they are not HTML). A tenant's template overrides the built-in one of the same
name, which is how the digests, photo requests and review alerts can be restyled.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import jinja2
from jinja2.sandbox import SandboxedEnvironment
from sqlalchemy.orm import Session

from app.messaging import queries

MAX_SOURCE = 100_000
#: As the table's check constraint.
NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,99}$")


class TemplateError(ValueError):
    """A template is missing, malformed or lacks a parameter: a permanent error."""


@dataclass(frozen=True)
class Template:
    name: str
    body_text: str
    subject: str | None = None
    body_html: str | None = None


@dataclass(frozen=True)
class Rendered:
    text: str
    subject: str | None = None
    html: str | None = None


_DIGEST_TEXT = """Hello {{ name or "there" }},

{{ period | capitalize }} digest, {{ start }} to {{ end }} ({{ timezone }}): {{ total }} event(s).
{% for kind, count in counts | dictsort %}- {{ kind }}: {{ count }}
{% else %}Nothing happened in this period.
{% endfor %}"""
_DIGEST_HTML = """<p>Hello {{ name or "there" }},</p>
<p>{{ period | capitalize }} digest, {{ start }} to {{ end }} ({{ timezone }}):
<strong>{{ total }}</strong> event(s).</p>
{% if counts %}<table>{% for kind, count in counts | dictsort %}
<tr><td>{{ kind }}</td><td>{{ count }}</td></tr>{% endfor %}
</table>{% else %}<p>Nothing happened in this period.</p>{% endif %}"""

BUILTIN: dict[str, Template] = {
    t.name: t for t in (
        Template("digest.daily", _DIGEST_TEXT, "Your daily digest: {{ total }} event(s)",
                 _DIGEST_HTML),
        Template("digest.weekly", _DIGEST_TEXT, "Your weekly digest: {{ total }} event(s)",
                 _DIGEST_HTML),
        Template("photos.request",
                 "Hi {{ name or 'there' }}, time for new photos of {{ locations | join(', ') }}."
                 " Reply with pictures and we will update your listing.",
                 "New photos for {{ locations | length }} location(s)?",
                 "<p>Hi {{ name or 'there' }}, time for new photos of "
                 "{{ locations | join(', ') }}.</p>"),
        Template("reviews.needs_reply",
                 "{{ count }} new review(s) rated {{ max_rating }} or less still need a reply.",
                 "{{ count }} review(s) need a reply",
                 "<p>{{ count }} new review(s) rated {{ max_rating }} or less still need a "
                 "reply.</p>"),
        Template("alert.sms", "{{ message }}", "Alert", None),
    )
}


def _environment(autoescape: bool) -> SandboxedEnvironment:
    return SandboxedEnvironment(undefined=jinja2.StrictUndefined, autoescape=autoescape,
                                keep_trailing_newline=False)


_TEXT = _environment(False)
_HTML = _environment(True)


@lru_cache(maxsize=512)
def _compile(source: str, html: bool) -> jinja2.Template:
    return (_HTML if html else _TEXT).from_string(source)


def _render(name: str, part: str, source: str, params: dict[str, Any], html: bool) -> str:
    try:
        return _compile(source, html).render(**params)
    except jinja2.UndefinedError as exc:
        raise TemplateError(f"template {name!r} ({part}): missing parameter: {exc.message}") \
            from None
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(f"template {name!r} ({part}) line {exc.lineno}: {exc.message}") \
            from None
    except jinja2.exceptions.SecurityError:
        raise TemplateError(f"template {name!r} ({part}) uses an operation the sandbox "
                            "forbids") from None
    except Exception as exc:  # a filter applied to the wrong type, a division by zero...
        raise TemplateError(f"template {name!r} ({part}) failed: {type(exc).__name__}") \
            from None


def check(template: Template) -> None:
    """Compile every part (syntax only), so a broken template is refused when saved."""
    parts = {"text": template.body_text, "subject": template.subject,
             "html": template.body_html}
    for part, source in parts.items():
        if source is None:
            continue
        if len(source) > MAX_SOURCE:
            raise TemplateError(f"template {template.name!r} ({part}) is longer than "
                                f"{MAX_SOURCE} characters")
        try:
            _compile(source, part == "html")
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateError(f"template {template.name!r} ({part}) line {exc.lineno}: "
                                f"{exc.message}") from None


def render(template: Template, params: dict[str, Any], channel: str) -> Rendered:
    """The message for ``channel``: email needs a subject and gets the HTML part too."""
    text = _render(template.name, "text", template.body_text, params, False).strip()
    if not text:
        raise TemplateError(f"template {template.name!r} rendered an empty message")
    if channel != "email":
        return Rendered(text=text)
    if not template.subject:
        raise TemplateError(f"template {template.name!r} has no subject: email needs one")
    subject = " ".join(_render(template.name, "subject", template.subject, params,
                               False).split())
    html = (None if template.body_html is None else
            _render(template.name, "html", template.body_html, params, True))
    return Rendered(text=text, subject=subject, html=html)


def save_template(
    session: Session, name: str, *, body_text: str, subject: str | None = None,
    body_html: str | None = None,
) -> None:
    """Create or replace the tenant's template ``name`` (checked first)."""
    if not NAME.fullmatch(name):
        raise TemplateError(f"template names are 1-100 lowercase letters, digits, '.', '_' "
                            f"or '-', starting with a letter or digit; got {name!r}")
    template = Template(name, body_text, subject, body_html)
    check(template)
    session.execute(queries.SAVE_TEMPLATE, {"name": name, "subject": subject,
                                            "body_text": body_text, "body_html": body_html})


def delete_template(session: Session, name: str) -> bool:
    return bool(session.execute(queries.DELETE_TEMPLATE, {"name": name}).rowcount)  # type: ignore[attr-defined]


def find_template(session: Session, name: str) -> Template:
    """The tenant's template ``name``, else the built-in one, else a ``TemplateError``."""
    row = session.execute(queries.FIND_TEMPLATE, {"name": name}).mappings().one_or_none()
    if row is not None:
        return Template(**row)
    if name in BUILTIN:
        return BUILTIN[name]
    raise TemplateError(f"no template named {name!r} for this tenant")
