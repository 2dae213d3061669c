"""Templates render safely: no code runs from template text, a missing parameter is an error,
HTML is escaped, a broken template is refused when saved."""

from __future__ import annotations

import pytest

from app.db.tenant import tenant_session
from app.messaging.templates import Template, TemplateError, render, save_template
from tests.support import TestDB

EMAIL = Template("t", "Hi {{ name }}", "About {{ topic }}", "<p>Hi {{ name }}</p>")


@pytest.mark.parametrize("source", [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ cycler.__init__.__globals__.os.system('id') }}",
    "{{ name.__class__.__init__.__globals__ }}",
    "{% for c in [].__class__.__base__.__subclasses__() %}{{ c }}{% endfor %}",
])
def test_template_text_cannot_run_code(source: str) -> None:
    with pytest.raises(TemplateError, match="uses an operation the sandbox forbids"):
        render(Template("evil", source), {"name": "x"}, "sms")


def test_a_missing_parameter_is_an_error_never_an_empty_string() -> None:
    with pytest.raises(TemplateError, match="template 't' \\(text\\): missing parameter: "
                                            "'name' is undefined"):
        render(EMAIL, {"topic": "x"}, "sms")
    with pytest.raises(TemplateError, match="'topic' is undefined"):
        render(EMAIL, {"name": "x"}, "email")  # the subject needs it too


def test_html_is_escaped_and_text_is_not() -> None:
    rendered = render(EMAIL, {"name": "<script>&", "topic": "a\nb\r\nc"}, "email")
    assert rendered.text == "Hi <script>&"
    assert rendered.html == "<p>Hi &lt;script&gt;&amp;</p>"
    assert rendered.subject == "About a b c"  # one line: no header injection
    assert render(EMAIL, {"name": "x"}, "sms").html is None  # SMS is text only


def test_email_needs_a_subject() -> None:
    with pytest.raises(TemplateError, match="no subject: email needs one"):
        render(Template("nosubject", "body"), {}, "email")


def test_a_broken_template_is_refused_when_saved(db: TestDB) -> None:
    tenant = db.create_tenant()
    with tenant_session(tenant) as session:
        with pytest.raises(TemplateError, match="line 1"):
            save_template(session, "broken", body_text="Hi {{ name ")
        save_template(session, "fine", body_text="Hi {{ name }}", subject="S")
        save_template(session, "fine", body_text="Hello {{ name }}", subject="S")  # replaced
    rows = db.query("SELECT name, body_text FROM message_templates")
    assert rows == [("fine", "Hello {{ name }}")]
    with pytest.raises(TemplateError, match="template names are"), \
            tenant_session(tenant) as session:
        save_template(session, "Bad Name!", body_text="x")
