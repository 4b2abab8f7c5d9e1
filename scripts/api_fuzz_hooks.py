"""Value generators for the formats tokenauth's OpenAPI documents name that Schemathesis does
not know, used by scripts/api-fuzz."""

import json
import os
import urllib.request

import schemathesis
from hypothesis import strategies as st

# `username`: NFKC letters and digits of one script with '.', '_' or '-', 3 to 64 of them
# (UTS 39 identifier characters; see the Registration schema). Latin, Greek and Cyrillic
# names; two that look alike are a 409, which a schema cannot foresee.
schemathesis.openapi.format(
    "username",
    st.one_of(
        st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9._-]{2,63}\Z"),
        st.from_regex(r"\A[α-ω0-9]{3,64}\Z"),
        st.from_regex(r"\A[а-я0-9]{3,64}\Z"),
    ),
)

# `redirect-uri`: what a client registers (see the RedirectUri schema): https in normal form
# (a path, a lower-case host), http on the loopback with a port that is not the default, or a
# private-use scheme in reverse-domain form.
_path = st.from_regex(r"\A/[a-z0-9/_-]{0,20}(\?[a-z]=[a-z0-9]{1,5})?\Z")
schemathesis.openapi.format(
    "redirect-uri",
    st.one_of(
        st.builds(
            lambda host, path: f"https://{host}{path}",
            st.from_regex(r"\A[a-z][a-z0-9]{0,10}(\.[a-z][a-z0-9]{0,10}){0,2}\.[a-z]{2,6}\Z"),
            _path,
        ),
        st.builds(
            lambda host, port, path: f"http://{host}:{port}{path}",
            st.sampled_from(["127.0.0.1", "[::1]"]),
            st.integers(min_value=1024, max_value=65535),
            _path,
        ),
        st.builds(
            lambda app, path: f"com.{app}.app:{path}",
            st.from_regex(r"\A[a-z]{1,10}\Z"),
            _path,
        ),
    ),
)


# With API_FUZZ_LOGIN (the auth-service's `/v1/login` URL), API_FUZZ_USERNAME and
# API_FUZZ_PASSWORD, every request carries an access token of that account, logged in again
# whenever a request is answered 401: the operations under test end sessions (logout, logout
# everywhere, revocations), and the rest must still be reached with a live token.
LOGIN = os.environ.get("API_FUZZ_LOGIN")
if LOGIN:
    USERNAME = os.environ["API_FUZZ_USERNAME"]
    PASSWORD = os.environ["API_FUZZ_PASSWORD"]

    @schemathesis.auth(refresh_interval=600)
    class Login:
        def get(self, case, ctx):
            body = json.dumps({"username": USERNAME, "password": PASSWORD}).encode()
            req = urllib.request.Request(
                LOGIN, data=body, headers={"content-type": "application/json"}
            )
            with urllib.request.urlopen(req, timeout=30) as res:
                return json.load(res)["access_token"]

        def set(self, case, token, ctx):
            case.headers = {**(case.headers or {}), "Authorization": f"Bearer {token}"}
