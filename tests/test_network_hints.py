"""Issue 22, the network's part: trust for registries is not trust for the image; a TLS handshake that
meets plain HTTP says so; a reference with a scheme is refused on every verb with the way to say it;
build --push knows the registry takes the push before it compresses, and says a failure once; hints
(a login, the proxies) only where they fit; a proxy that is the trouble is named, never hidden behind
the HTTPS attempt's error. Real registries (tests/registries.py) wherever a server answers."""

import io
import json
import gzip
import os
import re
import socket
import ssl
import tarfile

import pytest

import registries
import zeroimage
from binaries import make_elf
from helpers import EPOCH, SECRET, fails, run_image
from imagetools import image_of, run_cli

HOST_BUNDLE = zeroimage.find_host_ca_bundle()


def closed_port():
    """A loopback port nothing listens on (bound, then let go)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- trust for the registry is not trust for the image ----


def _image_bundle(archive):
    _, _, _, layers = image_of(str(archive))
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(layers[0]))) as tar:
        return tar.extractfile("etc/ssl/certs/ca-certificates.crt").read()


def _pem_count(data):
    return len(re.findall(rb"-----BEGIN CERTIFICATE-----", data))


@pytest.mark.skipif(HOST_BUNDLE is None, reason="this host has no CA bundle")
@pytest.mark.parametrize("variables", [
    {"SSL_CERT_FILE": "{one}"},
    {"SSL_CERT_FILE": "{one}", "SSL_CERT_DIR": "{dir}"},
    {"SSL_CERT_DIR": "{dir}"},
    {"SSL_CERT_FILE": "/nonexistent.pem"},
], ids=["file", "file-and-dir", "dir", "missing-file"])
def test_registry_trust_never_becomes_the_images_roots(tmp_path, prog, variables):
    """SSL_CERT_FILE/SSL_CERT_DIR (what zeroimage trusts to reach registries) leave the image with the
    host's system bundle, byte for byte, and no warning."""
    one = tmp_path / "one.pem"
    with open(HOST_BUNDLE, "rb") as f:
        first = re.search(rb"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----\n", f.read(), re.S).group(0)
    one.write_bytes(first)
    (tmp_path / "certs").mkdir()
    env = {k: v.format(one=one, dir=tmp_path / "certs") for k, v in variables.items()}
    r = run_cli("build", "-o", tmp_path / "a.tar", prog, env=dict(EPOCH, **env))
    assert r.returncode == 0, r.stderr
    assert "CA bundle" not in r.stderr
    with open(HOST_BUNDLE, "rb") as f:
        host = f.read()
    bundle = _image_bundle(tmp_path / "a.tar")
    assert bundle == host and _pem_count(bundle) == _pem_count(host) >= 20


@pytest.mark.interop
@pytest.mark.skipif(HOST_BUNDLE is None, reason="this host has no CA bundle")
def test_the_image_run_under_runc_holds_the_hosts_roots_whatever_ssl_cert_file_says(tmp_path, busybox_program):
    """Read back by skopeo, unpacked by umoci, run by runc: the program in the image sees the host's
    roots, not the one certificate zeroimage was told to trust for registries."""
    one = tmp_path / "one.pem"
    with open(HOST_BUNDLE, "rb") as f:
        host = f.read()
    one.write_bytes(re.search(rb"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----\n", host, re.S).group(0))
    archive = tmp_path / "app.tar"
    r = run_cli("build", "-o", archive, busybox_program, env={"SSL_CERT_FILE": str(one)})
    assert r.returncode == 0, r.stderr
    _, out = run_image(tmp_path, "oci-archive:%s" % archive,
                       ["/busybox", "grep", "-c", "BEGIN CERTIFICATE", "/etc/ssl/certs/ca-certificates.crt"])
    assert int(out.split()[-1]) == _pem_count(host) >= 20


@pytest.mark.parametrize("certificates, warned", [(0, True), (1, True), (19, True), (20, False), (150, False)])
def test_a_bundle_with_few_roots_is_warned_of_even_with_q(tmp_path, prog, certificates, warned):
    pem = b"".join(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n" for _ in range(certificates))
    small = tmp_path / "small.pem"
    small.write_bytes(pem or b"not a certificate\n")
    r = run_cli("-q", "build", "--ca-bundle", small, "-o", tmp_path / "a.tar", prog, env=EPOCH)
    assert r.returncode == 0, r.stderr
    assert ("warning:" in r.stderr and "--ca-bundle" in r.stderr) is warned, r.stderr
    if warned:
        assert ("only %d certificate" % certificates if certificates else "no PEM certificate") in r.stderr
    assert _image_bundle(tmp_path / "a.tar") == small.read_bytes()


def test_the_host_bundle_found_is_never_ssl_cert_file(tmp_path):
    (tmp_path / "x.pem").write_bytes(b"")
    assert zeroimage.find_host_ca_bundle({"SSL_CERT_FILE": str(tmp_path / "x.pem")}) == HOST_BUNDLE


# ---- a TLS handshake that meets plain HTTP ----


@pytest.mark.parametrize("said, plain", [
    ("[SSL: WRONG_VERSION_NUMBER] wrong version number (_ssl.c:1000)", True),        # OpenSSL 1.1, 3.0
    ("[SSL: RECORD_LAYER_FAILURE] record layer failure (_ssl.c:1000)", True),        # 3.2 and later
    ("[SSL: PACKET_LENGTH_TOO_LONG] packet length too long (_ssl.c:1000)", True),
    ("[SSL: UNKNOWN_PROTOCOL] unknown protocol (_ssl.c:600)", True),
    ("[SSL: HTTP_REQUEST] http request (_ssl.c:1000)", True),
    ("[SSL: SSLV3_ALERT_HANDSHAKE_FAILURE] sslv3 alert handshake failure (_ssl.c:1000)", False),
    ("[SSL: TLSV1_ALERT_PROTOCOL_VERSION] tlsv1 alert protocol version (_ssl.c:1000)", False),
    ("[SSL: UNEXPECTED_EOF_WHILE_READING] EOF occurred in violation of protocol", False),
])
def test_plain_http_is_told_from_other_tls_trouble(said, plain):
    error = ssl.SSLError(1, said)
    assert zeroimage._met_plain_http(error) is plain
    message = zeroimage._network_error("GET", "https://10.0.0.1:5000/v2/", error)
    assert (message.hint == "plain-http") is plain
    assert ("answered plain HTTP to a TLS handshake" in str(message)) is plain
    assert "--insecure" not in str(message), "the CLI words the hint"
    assert zeroimage._error_line(message).endswith("use --insecure") is plain


def test_a_certificate_error_is_not_plain_http():
    error = ssl.SSLCertVerificationError(1, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed")
    assert not zeroimage._met_plain_http(error)


@pytest.fixture(scope="module")
def lan_registry(tmp_path_factory):
    """The real docker-registry, plain HTTP, on this machine's address that is not loopback."""
    from conftest import need_tool
    address = registries.lan_address()
    if address is None:
        pytest.skip("this machine has no address but loopback")
    server = registries.RegistryProcess(need_tool("docker-registry"), tmp_path_factory.mktemp("lan-registry"), "open",
                                        address=address)
    yield server
    server.close()


@pytest.mark.interop
def test_a_plain_http_registry_off_loopback_says_to_use_insecure(tmp_path, prog, lan_registry):
    host = lan_registry.host
    r = run_cli("build", "--from", "scratch", "-o", tmp_path / "app.tar", prog, env=EPOCH)
    assert r.returncode == 0, r.stderr
    verbs = [
        ("push", tmp_path / "app.tar", host + "/x:1"),
        ("build", "--from", "scratch", "--push", host + "/x:1", prog),
        ("build", "--from", host + "/x:1", "-o", tmp_path / "b.tar", prog),
        ("pull", host + "/x:1", "-o", tmp_path / "p.tar"),
        ("copy", tmp_path / "app.tar", host + "/x:2"),
        ("inspect", host + "/x:1"),
        ("digest", host + "/x:1"),
        ("tags", host + "/x"),
        ("check-auth", "--push", host + "/x:1"),
        ("login", "-u", "u", "-p", "pw", host),
    ]
    for argv in verbs:
        line = fails(run_cli(*argv), 1)
        assert line == ("zeroimage: error: %s answered plain HTTP to a TLS handshake (GET https://%s/v2/); if it is a "
                        "plain-HTTP registry, use --insecure" % (host, host)), (argv, line)
        assert not os.path.exists(str(tmp_path / "p.tar")) and not os.path.exists(str(tmp_path / "b.tar"))
    r = run_cli("--insecure", "push", tmp_path / "app.tar", host + "/x:1")
    assert r.returncode == 0, r.stderr
    r = run_cli("pull", "--insecure", host + "/x:1", "-o", tmp_path / "p.tar")
    assert r.returncode == 0, r.stderr


@pytest.mark.interop
def test_plain_http_through_an_https_proxy_tunnel_is_said_too(tmp_path, lan_registry):
    proxy = registries.ConnectProxy()
    try:
        r = run_cli("digest", lan_registry.host + "/x:1",
                    env={"HTTPS_PROXY": proxy.url, "https_proxy": "", "NO_PROXY": "", "no_proxy": ""})
    finally:
        proxy.close()
    assert "answered plain HTTP to a TLS handshake" in fails(r, 1)


# ---- a reference has no scheme ----

REF_VERBS = [
    ("build", "--push", "{ref}", "{prog}"),
    ("build", "--from", "{ref}", "{prog}"),
    ("pull", "{ref}"),
    ("push", "{archive}", "{ref}"),
    ("copy", "{ref}", "{archive}"),
    ("copy", "{archive}", "{ref}"),
    ("inspect", "{ref}"),
    ("digest", "{ref}"),
    ("tag", "{ref}", "2"),
    ("delete", "{ref}"),
    ("check-auth", "{ref}"),
    ("tags", "{repo}"),
    ("sync", "{repo}", "{repo}"),
]


@pytest.mark.parametrize("scheme", ["http", "https", "HTTP", "oci"])
@pytest.mark.parametrize("argv", REF_VERBS, ids=[" ".join(v[:2]) for v in REF_VERBS])
def test_a_reference_with_a_scheme_is_refused_with_the_way_to_say_it(tmp_path, prog, scheme, argv):
    archive = tmp_path / "app.tar"
    archive.write_bytes(b"")
    values = {"ref": "%s://192.0.2.9:5102/team/x:1" % scheme, "repo": "%s://192.0.2.9:5102/team/x" % scheme,
              "prog": prog, "archive": archive}
    r = run_cli(*[a.format(**values) for a in argv], cwd=str(tmp_path))
    line = fails(r, 2)
    assert "a reference has no scheme; write 192.0.2.9:5102/team/x" in line, line
    assert "--insecure" in line


# ---- fail before the work, once ----


@pytest.fixture
def big_program(tmp_path):
    """A program large enough that compressing it first would show (8 MB of random bytes)."""
    path = tmp_path / "big"
    with open(str(path), "wb") as f:
        f.write(make_elf(62))
        f.write(os.urandom(8 * 1024 * 1024))
    os.chmod(str(path), 0o755)
    return path


def _said_once(r, words):
    assert sum(words in line for line in r.stderr.splitlines()) == 1, r.stderr
    assert "compressed" not in r.stderr and "uploaded" not in r.stderr, r.stderr


@pytest.mark.interop
def test_build_push_to_a_registry_that_is_down_fails_first_and_once(tmp_path, big_program):
    port = closed_port()
    for argv in (("build", "--push", "127.0.0.1:%d/app:1" % port, big_program),
                 ("build", "--from", "scratch", "--push", "127.0.0.1:%d/app:1" % port,
                  "linux/amd64=%s" % big_program, "linux/arm64=%s" % big_program, "--no-platform-check")):
        r = run_cli(*argv, env=EPOCH)
        fails(r, 1)
        _said_once(r, "127.0.0.1:%d" % port)


@pytest.mark.interop
def test_build_push_without_credentials_fails_before_compressing(tmp_path, pki, registry_servers, big_program):
    server = registry_servers("basic")
    env = dict(EPOCH, DOCKER_CONFIG=str(tmp_path / "cfg"))
    r = run_cli("build", "--push", server.host + "/app:1", big_program, env=env)
    line = fails(r, 1)
    _said_once(r, "access denied")
    assert "are you logged in? try: zeroimage login %s" % server.host in line
    r = run_cli("copy", "--insecure", server.host + "/nothing:1", server.host + "/app:1", env=env)
    assert "cannot push" in fails(r, 1)


@pytest.mark.interop
def test_a_push_the_registry_denies_fails_before_compressing(tmp_path, pki, registry_servers, big_program):
    upstream = registry_servers("open")
    proxy = registries.QuirkProxy(upstream, mode="deny-push")
    try:
        r = run_cli("build", "--push", proxy.host + "/app:1", big_program, env=EPOCH)
    finally:
        proxy.close()
    line = fails(r, 1)
    _said_once(r, "denied")
    assert "asks for no credentials, so a login will not help" in line, line


@pytest.fixture
def big_save(tmp_path):
    """A docker save archive (before Docker 25) whose one layer is uncompressed: 8 MB of random bytes,
    which a push would gzip first."""
    from imagetools import DockerSaveBuilder
    builder = DockerSaveBuilder()
    builder.image([[("big", "file", os.urandom(8 * 1024 * 1024), 0o644)]], {"config": {}}, tags=["big:1"])
    return builder.write(tmp_path / "save.tar")


# (the registry's trouble; the words of its one error line)
PUSH_TROUBLE = [("down", "cannot reach 127.0.0.1:"), ("no credentials", "cannot push app:1: access denied"),
                ("denied", "cannot push app:1: access denied")]


@pytest.mark.interop
@pytest.mark.parametrize("verb", ["push", "copy"])
@pytest.mark.parametrize("trouble, words", PUSH_TROUBLE)
def test_an_archive_push_fails_before_compressing_its_layers(tmp_path, pki, registry_servers, big_save, verb,
                                                              trouble, words):
    """push, as copy and build --push: the sink's start asks the registry before any layer work."""
    env = dict(EPOCH, DOCKER_CONFIG=str(tmp_path / "cfg"))
    proxy = None
    if trouble == "down":
        host = "127.0.0.1:%d" % closed_port()
    elif trouble == "no credentials":
        host = registry_servers("basic").host
    else:
        proxy = registries.QuirkProxy(registry_servers("open"), mode="deny-push")
        host = proxy.host
    try:
        r = run_cli(verb, big_save, host + "/app:1", env=env)
    finally:
        if proxy is not None:
            proxy.close()
    line = fails(r, 1)
    _said_once(r, words.replace("app:1", host + "/app:1"))
    assert words.replace("app:1", host + "/app:1") in line, line


@pytest.mark.parametrize("verb", ["push", "copy"])
@pytest.mark.parametrize("archive, words", [
    ("nothere.tar", "nothere.tar"),
    ("empty.tar", "empty.tar"),                 # not an archive of images
    ("save.tar:other:1", "no image named"),     # a docker save archive without that name
])
def test_an_archive_refused_is_said_before_any_connection(tmp_path, big_save, verb, archive, words):
    (tmp_path / "empty.tar").write_bytes(b"")
    r = run_cli(verb, tmp_path / archive, "127.0.0.1:%d/app:1" % closed_port(), env=EPOCH)
    last = r.stderr.splitlines()[-1]
    assert r.returncode in (1, 2) and words in last and "127.0.0.1" not in last, r.stderr
    assert "compressed" not in r.stderr, r.stderr


# ---- hints that fit ----


@pytest.mark.interop
def test_not_found_on_a_registry_that_asks_no_credentials_asks_no_login(tmp_path, registry_servers):
    server = registry_servers("open")
    for argv in (("pull", server.host + "/nothing/here:1", "-o", tmp_path / "x.tar"),
                 ("inspect", server.host + "/nothing/here:1"), ("digest", server.host + "/nothing/here:1")):
        line = fails(run_cli(*argv), 1)
        assert "not found" in line and "is the name right?" in line, line
        assert "logged in" not in line and "zeroimage login" not in line and "proxies" not in line, line


@pytest.mark.interop
def test_a_registry_that_asks_for_credentials_gets_the_login_hint(tmp_path, registry_servers):
    server = registry_servers("basic")
    line = fails(run_cli("pull", server.host + "/nothing/here:1", "-o", tmp_path / "x.tar",
                         env={"DOCKER_CONFIG": str(tmp_path / "cfg")}), 1)
    assert "are you logged in? try: zeroimage login %s" % server.host in line, line


def test_an_unreachable_registry_without_a_proxy_names_no_proxy(tmp_path):
    env = {k: "" for k in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY")}
    line = fails(run_cli("digest", "127.0.0.1:%d/x:1" % closed_port(), env=env), 1)
    assert "is it running?" in line and "prox" not in line.lower(), line


# ---- a proxy that is the trouble is named ----


@pytest.mark.interop
@pytest.mark.parametrize("variable", ["http_proxy", "HTTP_PROXY", "all_proxy"])
@pytest.mark.parametrize("setting, words", [
    ("socks5://user:%s@127.0.0.1:1080" % SECRET, ["only HTTP proxies", "socks5"]),
    ("https://user:%s@127.0.0.1:3128" % SECRET, ["TLS to the proxy"]),
    ("http://user:%s@127.0.0.1:{closed}" % SECRET,
     ["cannot reach the proxy 127.0.0.1:{closed}", "is the proxy running"]),
])
def test_a_bad_proxy_toward_a_plain_http_registry_is_named(tmp_path, registry_servers, variable, setting, words):
    """Before: the loopback registry's HTTPS attempt's [SSL: WRONG_VERSION_NUMBER] hid the proxy."""
    server = registry_servers("open")
    port = closed_port()
    env = {k: "" for k in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY",
                           "no_proxy", "NO_PROXY")}
    env[variable] = setting.format(closed=port)
    r = run_cli("digest", server.host + "/x:1", env=env)
    line = fails(r, 1)
    for word in words:
        assert word.format(closed=port) in line, line
    assert variable in line and SECRET not in r.stderr + r.stdout, line
    assert "TLS handshake" not in line and "SSL" not in line, line


def test_a_proxy_that_is_not_running_for_https_is_named(tmp_path):
    port = closed_port()
    line = fails(run_cli("digest", "registry.example:443/x:1",
                         env={"HTTPS_PROXY": "http://127.0.0.1:%d" % port, "https_proxy": "", "NO_PROXY": "",
                              "no_proxy": ""}), 1)
    assert "cannot reach the proxy 127.0.0.1:%d (from HTTPS_PROXY) for registry.example:443" % port in line, line


# ---- what is retried, said as the code says it ----


def test_the_readme_names_the_statuses_retried():
    """One list in the code (RETRY_STATUSES); the README says it as it is, where it speaks of retries."""
    with open(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md")) as f:
        readme = f.read()
    listed = zeroimage.RETRY_STATUSES
    said = "%s and %d" % (", ".join(str(s) for s in listed[:-1]), listed[-1])
    assert readme.count(said) >= 2, said        # the Network section, and what the tests make sure of
    assert 501 not in listed, "Not Implemented is permanent: never retried"


@pytest.mark.interop
@pytest.mark.parametrize("mode", ["basic", "token"])
def test_a_wrong_stored_password_is_said_as_refused_credentials_not_rights(tmp_path, registry_servers, pki, mode):
    """A 401 to credentials that were sent (Basic), or the token service turning them down, is a wrong
    or expired password: 'log in again', never 'may alice push there?' (that is for a right refused)."""
    import base64
    server = registry_servers(mode)
    config = tmp_path / "cfg"
    config.mkdir()
    (config / "config.json").write_text(json.dumps({"auths": {server.host: {
        "auth": base64.b64encode(b"alice:not-her-password").decode()}}}))
    env = {"DOCKER_CONFIG": str(config), "SSL_CERT_FILE": pki["ca"]}
    program = tmp_path / "app"
    program.write_bytes(make_elf(62) + b"\0" * 4096)
    for argv in (("build", "--push", server.host + "/x/app:1", program), ("inspect", server.host + "/x/app:1"),
                 ("tags", server.host + "/x/app")):
        line = fails(run_cli(*argv, env=env), 1)
        assert "refused the credentials of alice" in line and "zeroimage login %s" % server.host in line, line
        assert "may alice" not in line and "not-her-password" not in line, line
