"""The sources the intake accepts: how each names its tenant, signs, and what it sends."""

from __future__ import annotations

from dataclasses import dataclass

from app.services.webhook_payloads import GENERIC_SOURCES

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"


@dataclass(frozen=True)
class Source:
    name: str
    #: ``generic`` (hex HMAC header), ``shopify``/``woocommerce`` (base64 HMAC header).
    scheme: str
    #: Headers that may carry the signature, in order.
    signature_headers: tuple[str, ...]
    #: The header naming the sender (shop domain), for routes without an endpoint token.
    key_header: str | None = None


GENERIC_SIGNATURE = "x-webhook-signature"

SOURCES: dict[str, Source] = {
    name: Source(name, "generic", (GENERIC_SIGNATURE,)) for name in GENERIC_SOURCES
}
# The WhatsApp Cloud API signs with Meta's header, the same scheme as the generic one.
SOURCES["whatsapp"] = Source("whatsapp", "generic", ("x-hub-signature-256", GENERIC_SIGNATURE))
SOURCES["shopify"] = Source("shopify", "base64", ("x-shopify-hmac-sha256",),
                            key_header="x-shopify-shop-domain")
SOURCES["woocommerce"] = Source("woocommerce", "base64", ("x-wc-webhook-signature",))

#: Header an endpoint token may come in, for senders that cannot put it in the URL path.
TOKEN_HEADER = "x-webhook-token"
