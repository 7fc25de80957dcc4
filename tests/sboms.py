"""What the SBOM tests share: ``go_info`` (the build information of a Go program with replacements
and odd versions), ``CHECKSUMS`` (a program's checksums) and ``check_spdx`` (the fields SPDX 2.3
requires of a document, its packages, files and relationships)."""

import base64
import re

import zeroimage

SPDX_ID = re.compile(r"SPDXRef-[A-Za-z0-9.-]+\Z")
H1 = "h1:" + base64.b64encode(bytes(range(32))).decode()


def go_info():
    m = zeroimage.Module
    return zeroimage.BuildInfo(
        "go", "go1.22.1", "example.com/app/cmd/app", m("example.com/app", "v1.2.3", H1),
        (m("github.com/pkg/errors", "v0.9.1", H1), m("github.com/Docker/x", "v20.10.0+incompatible", "h1:bad"),
         m("golang.org/x/sys", "v0.1.0", H1, m("example.org/fork/sys", "v0.1.1", H1)),
         m("golang.org/x/net", "v0.2.0", H1, m("../net", ""))),
        (("vcs.revision", "abc"), ("GOARCH", "amd64")))


CHECKSUMS = {"SHA1": "a" * 40, "SHA256": "b" * 64}


def check_spdx(doc):
    """The fields SPDX 2.3 requires of a document, its packages, files and relationships."""
    assert doc["spdxVersion"] == "SPDX-2.3" and doc["dataLicense"] == "CC0-1.0"
    assert doc["SPDXID"] == "SPDXRef-DOCUMENT" and doc["name"]
    assert re.match(r"https://[^#\s]+\Z", doc["documentNamespace"])
    assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\Z", doc["creationInfo"]["created"])
    assert all(c.startswith(("Tool: ", "Organization: ", "Person: ")) for c in doc["creationInfo"]["creators"])
    ids = [element["SPDXID"] for element in doc["packages"] + doc["files"]]
    assert len(ids) == len(set(ids)) and all(SPDX_ID.match(i) for i in ids)
    for package in doc["packages"]:
        assert package["name"] and package["downloadLocation"] and "filesAnalyzed" in package
        if package["filesAnalyzed"]:
            assert re.match(r"[0-9a-f]{40}\Z", package["packageVerificationCode"]["packageVerificationCodeValue"])
        for checksum in package.get("checksums", []):
            assert checksum["algorithm"] == "SHA256" and re.match(r"[0-9a-f]{64}\Z", checksum["checksumValue"])
    for file in doc["files"]:
        assert file["fileName"].startswith("./")
        assert "SHA1" in [c["algorithm"] for c in file["checksums"]]     # SPDX 2.3: a file's SHA1 is required
    known = set(ids) | {"SPDXRef-DOCUMENT"}
    for r in doc["relationships"]:
        assert r["spdxElementId"] in known and r["relatedSpdxElement"] in known
    assert {"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES",
            "relatedSpdxElement": "SPDXRef-Package-program"} in doc["relationships"]
    # a package that CONTAINS a file has had its files analysed
    for r in doc["relationships"]:
        if r["relationshipType"] == "CONTAINS":
            assert next(p for p in doc["packages"] if p["SPDXID"] == r["spdxElementId"])["filesAnalyzed"]
