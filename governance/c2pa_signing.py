"""C2PA: a signed manifest embedded in every MP4, and reading it back with its validation state.

The manifest says what made the video: a `c2pa.created` action with the IPTC digital source type
`trainedAlgorithmicMedia` (EU AI Act Art. 50 machine-readable marking), the avatar photo as an
ingredient, and a `org.dhf.generation` assertion with the content id, avatar version, license and
the hashes of the avatar, driver and audio. The hash binding covers every byte of the file, so any
change after signing reads back as invalid.

Signing uses the organization's certificate chain when configured (`provenance.signing_*`). Without
one, a TEST chain (root CA + signer, both named "TEST … NOT FOR PRODUCTION") is generated once under
`<home>/provenance/test-chain`: C2PA refuses self-signed leaf certificates, hence the two levels.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from config import Settings
from config.errors import DhfError
from config.files import atomic_path

TRAINED_ALGORITHMIC_MEDIA = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
GENERATION_ASSERTION = "org.dhf.generation"
TEST_MARK = "TEST certificate - NOT FOR PRODUCTION"
MIME = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".mp4": "video/mp4"}


class ProvenanceError(DhfError):
    """Signing is misconfigured or failed; the message names the file or setting to fix."""

    http_status = 500  # the server's signing set-up, not the caller's request
    code = "provenance"


@dataclass(frozen=True)
class SigningIdentity:
    chain_pem: bytes  # signer certificate first, then intermediates (and the test root)
    key_pem: bytes
    algorithm: str
    is_test: bool
    root_pem: bytes | None  # the test root, for verifying our own test signatures


def test_chain_folder(settings: Settings) -> Path:
    return settings.paths.home / "provenance" / "test-chain"


def signing_identity(settings: Settings) -> SigningIdentity:
    """The configured organization chain, or the generated test chain."""
    provenance = settings.provenance
    if provenance.signing_certificate is None or provenance.signing_key is None:
        folder = ensure_test_chain(test_chain_folder(settings))
        return SigningIdentity(
            (folder / "chain.pem").read_bytes(),
            (folder / "signer-key.pem").read_bytes(),
            "es256",
            True,
            (folder / "root.pem").read_bytes(),
        )
    try:
        chain, key = Path(provenance.signing_certificate).read_bytes(), Path(provenance.signing_key).read_bytes()
    except OSError as exc:
        raise ProvenanceError(
            f"cannot read the C2PA signing certificate or key ({exc}); fix provenance.signing_certificate/signing_key"
        ) from exc
    _check_certificate(chain, Path(provenance.signing_certificate))
    return SigningIdentity(chain, key, provenance.signing_algorithm, False, None)


def _check_certificate(chain: bytes, path: Path) -> None:
    from cryptography import x509

    try:
        signer = x509.load_pem_x509_certificates(chain)[0]
    except ValueError as exc:
        raise ProvenanceError(f"{path} is not a PEM certificate chain; export it as PEM, signer first") from exc
    now = dt.datetime.now(dt.UTC)
    if not signer.not_valid_before_utc <= now <= signer.not_valid_after_utc:
        raise ProvenanceError(
            f"the C2PA signing certificate in {path} is not valid now (valid {signer.not_valid_before_utc:%Y-%m-%d} "
            f"to {signer.not_valid_after_utc:%Y-%m-%d}); renew it"
        )


def ensure_test_chain(folder: Path) -> Path:
    """Generate the test root CA and signer once (atomically: a folder renamed into place)."""
    if (folder / "chain.pem").is_file():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".test-chain-", dir=folder.parent))
    for name, data in _generate_test_chain().items():
        (staging / name).write_bytes(data)
    try:
        os.rename(staging, folder)
    except OSError:  # another render created it meanwhile: use theirs
        for child in staging.iterdir():
            child.unlink()
        staging.rmdir()
    return folder


def _generate_test_chain() -> dict[str, bytes]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    def name(common: str) -> x509.Name:
        return x509.Name(
            [
                x509.NameAttribute(NameOID.COMMON_NAME, common),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, f"Digital Human Factory {TEST_MARK}"),
            ]
        )

    def usage(sign: bool, ca: bool) -> x509.KeyUsage:
        flags = dict.fromkeys(
            ("content_commitment", "key_encipherment", "data_encipherment", "key_agreement", "encipher_only"), False
        )
        return x509.KeyUsage(digital_signature=sign, key_cert_sign=ca, crl_sign=ca, decipher_only=False, **flags)

    now = dt.datetime.now(dt.UTC)
    root_key, signer_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    root_name = name(f"DHF Root CA ({TEST_MARK})")
    root = (
        x509.CertificateBuilder()
        .subject_name(root_name)
        .issuer_name(root_name)
        .public_key(root_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(usage(False, True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(root_key.public_key()), critical=False)
        .sign(root_key, hashes.SHA256())
    )
    signer = (
        x509.CertificateBuilder()
        .subject_name(name(f"DHF signer ({TEST_MARK})"))
        .issuer_name(root_name)
        .public_key(signer_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=825))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(usage(True, False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(signer_key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()), critical=False)
        .sign(root_key, hashes.SHA256())
    )

    def pem(certificate) -> bytes:
        return certificate.public_bytes(serialization.Encoding.PEM)

    key_pem = signer_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return {"root.pem": pem(root), "chain.pem": pem(signer) + pem(root), "signer-key.pem": key_pem}


def manifest_definition(title: str, generation: dict[str, Any], settings: Settings) -> dict[str, Any]:
    provenance = settings.provenance
    return {
        "claim_generator_info": [{"name": f"{provenance.provider} ({provenance.software})", "version": "0.1"}],
        "title": title,
        "format": "video/mp4",
        "assertions": [
            {
                "label": "c2pa.actions.v2",
                "data": {
                    "actions": [
                        {
                            "action": "c2pa.created",
                            "digitalSourceType": TRAINED_ALGORITHMIC_MEDIA,
                            "softwareAgent": {"name": provenance.software},
                            "description": "AI-generated talking-head video of a licensed avatar (AI生成)",
                        }
                    ]
                },
            },
            {"label": GENERATION_ASSERTION, "data": generation},
        ],
    }


def sign_mp4(video: Path, definition: dict[str, Any], identity: SigningIdentity, ingredients: list[Path]) -> None:
    """Embed the signed manifest: written to a temp file beside `video`, then renamed over it."""
    import c2pa

    signer_info = c2pa.C2paSignerInfo(identity.algorithm.encode(), identity.chain_pem, identity.key_pem, None)
    context = c2pa.Context.from_dict({"builder": {"thumbnail": {"enabled": False}}})
    try:
        with c2pa.Signer.from_info(signer_info) as signer, c2pa.Builder(json.dumps(definition), context) as builder:
            for ingredient in ingredients:
                mime = MIME.get(ingredient.suffix.lower())
                if mime is None or not ingredient.is_file():
                    continue
                with ingredient.open("rb") as stream:
                    meta = {"title": ingredient.name, "relationship": "inputTo"}
                    builder.add_ingredient(json.dumps(meta), mime, stream)
            with atomic_path(video) as temporary, video.open("rb") as source, temporary.open("wb") as target:
                builder.sign(signer, "video/mp4", source, target)
    except c2pa.C2paError as exc:
        raise ProvenanceError(f"C2PA signing of {video} failed: {exc}; check provenance.signing_* settings") from exc


@dataclass(frozen=True)
class ManifestReading:
    status: str  # valid | absent | invalid
    state: str | None  # c2pa validation state: Trusted, Valid (untrusted signer), Invalid
    problems: tuple[str, ...]
    signer: str | None
    test_signer: bool
    generation: dict[str, Any]
    digital_source_type: str | None


def trust_anchors(settings: Settings) -> str:
    """PEM roots to trust: the configured ones; the test root only when no organization chain is set."""
    provenance = settings.provenance
    roots = Path(provenance.trust_anchors).read_text() if provenance.trust_anchors else ""
    if provenance.signing_certificate is None:
        test_root = test_chain_folder(settings) / "root.pem"
        if test_root.is_file():
            roots += test_root.read_text()
    return roots


def read_manifest(video: Path, settings: Settings) -> ManifestReading:
    import c2pa

    anchors = trust_anchors(settings)
    config: dict[str, Any] = {"verify": {"verify_trust": bool(anchors)}}
    if anchors:
        config["trust"] = {"trust_anchors": anchors}
    try:
        with video.open("rb") as stream, c2pa.Reader("video/mp4", stream, context=c2pa.Context.from_dict(config)) as r:
            store, state = json.loads(r.json()), r.get_validation_state()
    except c2pa.C2paError as exc:
        if "ManifestNotFound" in type(exc).__name__ or "no JUMBF" in str(exc):
            return ManifestReading("absent", None, (), None, False, {}, None)
        return ManifestReading("invalid", None, (str(exc)[:200],), None, False, {}, None)
    active = store.get("manifests", {}).get(store.get("active_manifest", ""), {})
    problems = tuple(f"{s.get('code')}: {s.get('explanation', '')}" for s in store.get("validation_status") or [])
    assertions = {a.get("label"): a.get("data", {}) for a in active.get("assertions", [])}
    actions = (assertions.get("c2pa.actions.v2") or assertions.get("c2pa.actions") or {}).get("actions", [])
    source_type = next((a.get("digitalSourceType") for a in actions if a.get("action") == "c2pa.created"), None)
    signer = (active.get("signature_info") or {}).get("common_name") or (active.get("signature_info") or {}).get(
        "issuer"
    )
    status = "valid" if state == "Trusted" and not problems else "invalid"
    test_signer = TEST_MARK in json.dumps(active.get("signature_info") or {})
    generation = assertions.get(GENERATION_ASSERTION) or {}
    return ManifestReading(status, state, problems, signer, test_signer, generation, source_type)


# --- Streamed answers (HLS with fragmented-MP4 segments) -----------------------------------------------
#
# c2pa-python 0.38.1 (c2pa-rs 0.91.3) signs a fragmented stream only as far as its init segment: the
# Rust SDK's `Builder::sign_fragmented_files` (Merkle tree over all fragments, a proof box written into
# each one) is not exported by the C library these bindings load, so the Python Builder cannot bind the
# fragments; its Reader can read them (`Reader.with_fragment`). And even that Rust call needs every
# fragment before it signs, which a live stream releases one by one. So a stream's init segment carries
# a manifest whose hash covers the init segment; the frames are marked by the watermark in every frame and
# bound by the final MP4's manifest (`seal`). docs/decisions.md, "C2PA on a streamed answer", has the
# measurements.

C2PA_UUID = bytes.fromhex("d8fec3d61b0e483c92975828877ec481")  # the extended type of the C2PA `uuid` box
INIT_BINDING = (
    "init segment only: c2pa-python cannot bind fMP4 fragments; every frame carries the watermark and the "
    "published MP4's manifest binds all frames"
)


def top_level_boxes(path: Path) -> list[tuple[str, bytes]]:
    """(box type, extended type for `uuid` boxes) of each top-level ISO BMFF box; [] past a truncated box."""
    data, boxes, offset = path.read_bytes(), [], 0
    while offset + 8 <= len(data):
        size, kind = int.from_bytes(data[offset : offset + 4], "big"), data[offset + 4 : offset + 8]
        header = 8
        if size == 1 and offset + 16 <= len(data):  # 64-bit size
            size, header = int.from_bytes(data[offset + 8 : offset + 16], "big"), 16
        if size < header or offset + size > len(data):
            return []
        extended = data[offset + header : offset + header + 16] if kind == b"uuid" else b""
        boxes.append((kind.decode("latin-1"), extended))
        offset += size
    return boxes if offset == len(data) else []


def sign_init_segment(
    init: Path, definition: dict[str, Any], identity: SigningIdentity, ingredients: list[Path] | None = None
) -> None:
    """Embed the signed manifest in a stream's fMP4 init segment, in place (temp file + rename).

    Call it once per encoder run, after the run's first segment is listed (ffmpeg's HLS muxer writes
    the init segment when it closes the first segment, and never rewrites it) and before the init
    segment is named in a released playlist. The manifest gets `stream_init.binding` in its generation
    assertion so a reader sees what its hash covers. Players skip the C2PA box (measured: ffmpeg and
    Chromium MSE decode the same frames with and without it).
    """
    boxes = top_level_boxes(init) if init.is_file() else []
    kinds = [kind for kind, _ in boxes]
    if "moov" not in kinds or "moof" in kinds or "mdat" in kinds:
        raise ProvenanceError(
            f"{init} is not a complete fMP4 init segment (top-level boxes: {' '.join(kinds) or 'none'}); "
            "sign the encoder's init file after its first segment is written"
        )
    if any(extended == C2PA_UUID for _, extended in boxes):
        raise ProvenanceError(f"{init} already carries a C2PA manifest; sign each encoder run's init segment once")
    stream_definition = json.loads(json.dumps(definition))  # the caller's definition stays as it was
    for assertion in stream_definition.get("assertions", []):
        if assertion.get("label") == GENERATION_ASSERTION:
            assertion["data"] = {**assertion.get("data", {}), "stream_init": {"binding": INIT_BINDING}}
    sign_mp4(init, stream_definition, identity, ingredients or [])
