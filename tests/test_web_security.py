"""Who may use the web page: Host check (no DNS rebinding), the operator login (hashed
password, cookie flags, rate limit), CSRF on every POST, login everywhere off loopback, TLS,
and the settings it refuses to start with."""

from __future__ import annotations

import datetime
import re
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from chargepoint.cli.main import main
from chargepoint.config import ConfigError, load_config
from chargepoint.web.app import build_app
from chargepoint.web.auth import LoginLimiter, OperatorPassword, PasswordFileError
from chargepoint.web.context import WebState
from chargepoint.web.settings import WebSettingsError, from_config
from tests.test_web_support import PASSWORD, log_station, served, station_config, web_state

Client = TestClient[web.Request, web.Application]


@pytest.fixture
async def state(tmp_path: Path) -> AsyncIterator[WebState]:
    s = web_state(station_config(log_station(tmp_path).config), allowed_hosts=("station.local",))
    yield s
    await s.reader.close()


@pytest.fixture
async def client(state: WebState) -> AsyncIterator[Client]:
    async with TestClient(TestServer(build_app(state))) as c:
        yield c


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert match is not None, html
    return match.group(1)


async def login(client: Client, password: str = PASSWORD) -> aiohttp.ClientResponse:
    token = csrf_of(await (await client.get("/login")).text())
    return await client.post(
        "/login",
        data={"csrf": token, "password": password, "next": "/"},
        allow_redirects=False,
    )


async def test_foreign_host_names_are_refused(client: Client) -> None:
    for host in ("evil.example", "evil.example:8080", "127.0.0.1.evil.example"):
        response = await client.get("/", headers={"Host": host})
        assert response.status == 421, host
        assert "does not answer to" in await response.text()
    for host in ("localhost:8080", "127.0.0.1", "[::1]:8080", "station.local", "STATION.local"):
        assert (await client.get("/", headers={"Host": host})).status == 200, host


async def test_the_login_sets_a_strict_http_only_cookie(client: Client) -> None:
    wrong = await login(client, "guess")
    assert wrong.status == 401 and "wrong password" in await wrong.text()
    assert "cp_session" not in wrong.cookies
    right = await login(client)
    assert right.status == 303 and right.headers["Location"] == "/"
    cookie = right.headers.getall("Set-Cookie")
    session = next(c for c in cookie if c.startswith("cp_session="))
    assert "HttpOnly" in session and "SameSite=Strict" in session and "Path=/" in session
    assert "Secure" not in session  # plain HTTP on loopback: a Secure cookie would not return
    page = await (await client.get("/")).text()
    assert "Log out" in page and 'action="/connectors/1/stop"' in page


async def test_logins_are_rate_limited(client: Client) -> None:
    for _ in range(LoginLimiter().per_client):
        assert (await login(client, "guess")).status == 401
    refused = await login(client)  # even the right password, now
    assert refused.status == 429 and int(refused.headers["Retry-After"]) > 0
    assert "too many failed logins" in await refused.text()


async def test_every_post_needs_the_csrf_token_of_its_visitor(client: Client) -> None:
    assert (await login(client)).status == 303
    token = csrf_of(await (await client.get("/")).text())
    no_token = await client.post("/connectors/1/stop", data={}, allow_redirects=False)
    assert no_token.status == 403 and "CSRF" in await no_token.text()
    async with TestClient(TestServer(client.app)) as other:  # another visitor's token
        foreign = csrf_of(await (await other.get("/login")).text())
    wrong = await client.post("/connectors/1/stop", data={"csrf": foreign}, allow_redirects=False)
    assert wrong.status == 403
    cross = await client.post(
        "/connectors/1/stop",
        data={"csrf": token},
        headers={"Origin": "http://evil.example"},
        allow_redirects=False,
    )
    assert cross.status == 403 and "another site" in await cross.text()
    ok = await client.post("/connectors/1/stop", data={"csrf": token}, allow_redirects=False)
    assert ok.status == 303  # sent to the daemon (which does not run here: the page says so)
    assert "the daemon does not answer" in await (await client.get("/")).text()
    # the login form itself is protected too
    bare = await client.post("/login", data={"password": PASSWORD}, allow_redirects=False)
    assert bare.status == 403


async def test_actions_need_a_login_and_logout_ends_it(client: Client) -> None:
    token = csrf_of(await (await client.get("/login")).text())
    anonymous = await client.post("/connectors/1/unlock", data={"csrf": token})
    assert anonymous.status == 401
    assert (await login(client)).status == 303
    token = csrf_of(await (await client.get("/")).text())
    out = await client.post("/logout", data={"csrf": token}, allow_redirects=False)
    assert out.status == 303
    assert 'action="/connectors/1/stop"' not in await (await client.get("/")).text()


async def test_off_loopback_every_page_but_the_verifier_needs_the_login(tmp_path: Path) -> None:
    cfg = station_config(log_station(tmp_path).config)
    state = web_state(cfg, host="192.0.2.10", plain_http=True)
    try:
        async with TestClient(TestServer(build_app(state))) as client:
            for page in ("/", "/transactions", "/keys", "/download?format=csv", "/events"):
                response = await client.get(page, allow_redirects=False)
                assert response.status == 303, page
                assert response.headers["Location"].startswith("/login?next=")
            assert (await client.get("/verify")).status == 200
            assert (await client.get("/static/style.css")).status == 200
            assert (await login(client)).status == 303
            assert (await client.get("/transactions")).status == 200
    finally:
        await state.reader.close()


async def test_pages_carry_a_strict_content_security_policy(client: Client) -> None:
    page = await client.get("/")
    csp = page.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp and "unsafe" not in csp
    assert page.headers["X-Frame-Options"] == "DENY"
    assert page.headers["Cache-Control"] == "no-store"
    verify = await client.get("/verify")
    csp = verify.headers["Content-Security-Policy"]
    assert "script-src 'sha256-" in csp and "unsafe" not in csp and "connect-src" not in csp
    html = await verify.text()
    assert "<script src" not in html and "<link" not in html  # one self-contained file
    assert 'http-equiv="Content-Security-Policy"' in html


def self_signed(tmp: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / "web.crt", tmp / "web.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


async def test_under_tls_the_cookie_is_secure(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    cfg = station_config(log_station(tmp_path).config)
    state = web_state(cfg, tls_cert=cert, tls_key=key)
    context = ssl.create_default_context(cafile=str(cert))
    context.check_hostname = False
    async with served(state) as base:
        url = base.replace("http://", "https://")
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            page = await http.get(f"{url}/login", ssl=context)
            assert page.status == 200 and page.headers["Strict-Transport-Security"]
            token = csrf_of(await page.text())
            done = await http.post(
                f"{url}/login",
                data={"csrf": token, "password": PASSWORD, "next": "/"},
                ssl=context,
                allow_redirects=False,
            )
            assert done.status == 303
            session = next(
                c for c in done.headers.getall("Set-Cookie") if c.startswith("cp_session=")
            )
            assert "Secure" in session and "HttpOnly" in session
            with pytest.raises(aiohttp.ClientError):  # no plain HTTP on the same port
                await http.get(f"{base}/", ssl=False)


def write_config(path: Path, web: dict[str, object]) -> Path:
    doc = yaml.safe_load(path.read_text())
    doc["web"] = web
    target = path.with_name("web-station.yaml")
    target.write_text(yaml.safe_dump(doc))
    return target


def test_off_loopback_the_config_needs_a_password_and_tls(tmp_path: Path) -> None:
    base = log_station(tmp_path).config
    with pytest.raises(ConfigError, match="operator_password_file"):
        load_config(write_config(base, {"listen": "0.0.0.0:8443"}))
    secret = tmp_path / "web-password"
    secret.write_text(PASSWORD + "\n")
    with pytest.raises(ConfigError, match="tls_cert"):
        load_config(
            write_config(base, {"listen": "0.0.0.0:8443", "operator_password_file": str(secret)})
        )
    plain = {"listen": "[::]:8080", "operator_password_file": str(secret), "plain_http": True}
    assert load_config(write_config(base, plain)).config.web.host == "::"
    with pytest.raises(ConfigError, match="listen"):
        load_config(write_config(base, {"listen": "localhost"}))
    with pytest.raises(ConfigError, match="go together"):
        load_config(write_config(base, {"tls_cert": str(secret)}))
    with pytest.raises(ConfigError, match="allowed_hosts"):
        load_config(write_config(base, {"allowed_hosts": ["evil.example:80"]}))
    loopback = load_config(base).config.web
    with pytest.raises(WebSettingsError, match="operator_password_file"):
        from_config(loopback, "192.0.2.10:8080")  # --listen off loopback, no password
    assert from_config(loopback, "[::1]:9999").loopback


def test_the_web_command_refuses_what_it_must_not_start_with(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = log_station(tmp_path).config
    code = main(["web", "--config", str(base), "--listen", "0.0.0.0:8080"])
    assert code == 78 and "operator_password_file" in capsys.readouterr().err
    empty = tmp_path / "empty-password"
    empty.write_text("\n")
    cfg = write_config(base, {"operator_password_file": str(empty)})
    assert main(["web", "--config", str(cfg)]) == 78
    assert "holds no password" in capsys.readouterr().err
    gone = write_config(base, {"operator_password_file": str(tmp_path / "nope")})
    assert main(["web", "--config", str(gone)]) == 78
    assert "cannot read password file" in capsys.readouterr().err


def test_the_password_is_kept_only_as_a_hash(tmp_path: Path) -> None:
    path = tmp_path / "password"
    path.write_text(f"{PASSWORD}\r\nsecond line is not part of it\n")
    kept = OperatorPassword.from_file(path)
    assert kept.matches(PASSWORD) and not kept.matches(PASSWORD + "\r") and not kept.matches("")
    assert PASSWORD.encode() not in repr(vars(kept)).encode()
    assert all(PASSWORD not in str(v) for v in vars(kept).values())
    with pytest.raises(PasswordFileError, match="no password"):
        path.write_text("")
        OperatorPassword.from_file(path)


def test_the_verifier_page_file_is_the_served_page(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "verify.html"
    assert main(["verifier-page", "-o", str(out)]) == 0
    html = out.read_text()
    assert html.startswith("<!doctype html>") and "chargepointVerifier" in html
    assert main(["verifier-page", "-o", str(out)]) == 1  # an existing file is kept
    assert "exists" in capsys.readouterr().err
    key = "04" + "11" * 64
    assert main(["verifier-page", "-o", str(out), "--force", "--public-key", key]) == 1
    assert "public key" in capsys.readouterr().err  # not a point on the curve
