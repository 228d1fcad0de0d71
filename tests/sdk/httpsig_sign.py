"""An independent RFC 9421 signer for Keystile's signed-request tests.

Uses only the standard library and `cryptography` (Ed25519). Prints the headers to send as a
JSON object.

    python httpsig_sign.py PROJECT PRIVATE_KEY_HEX METHOD URL
"""

import base64
import json
import secrets
import sys
import time
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


def main() -> None:
    project, private_hex, method, url = sys.argv[1:5]
    key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(private_hex.strip()))
    parts = urlsplit(url)
    authority = parts.netloc.lower()
    default = {"http": ":80", "https": ":443"}[parts.scheme]
    if authority.endswith(default):
        authority = authority[: -len(default)]
    keyid = f"{project}.agents.keystile.local"
    created = int(time.time())
    # A different component order and label than Keystile's own signer, plus an extra
    # parameter: a compliant verifier must not care.
    params = (
        '("@target-uri" "@authority" "@method")'
        f';keyid="{keyid}";nonce="{secrets.token_hex(16)}";created={created};expires={created + 300}'
        ';tag="python-test"'
    )
    base = "\n".join(
        [
            f'"@target-uri": {url}',
            f'"@authority": {authority}',
            f'"@method": {method.upper()}',
            f'"@signature-params": {params}',
        ]
    )
    signature = base64.b64encode(key.sign(base.encode("ascii"))).decode("ascii")
    print(
        json.dumps(
            {
                "signature-input": f"py-sig={params}",
                "signature": f"py-sig=:{signature}:",
                "signature-agent": f'"https://{keyid}"',
            }
        )
    )


if __name__ == "__main__":
    main()
