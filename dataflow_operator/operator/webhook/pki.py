"""The webhook's own small PKI: a CA, a serving certificate it signs, and when to renew which.

The API server trusts the webhook through the ``caBundle`` of the ValidatingWebhookConfiguration,
so a new certificate may be served only once the bundle trusts its issuer. :func:`plan` therefore
renews in two steps when the CA itself is due: first a new CA is *added* to the bundle (the old
one stays while it is valid, and so does the certificate it signed); only when the new bundle is
published (``published``) and has had ``propagation`` seconds to reach the API server's cache is
the serving certificate re-issued from the new CA. A serving certificate due for renewal under an
unchanged CA is simply re-issued: the bundle does not change.

Pure: time comes in as ``now``; keys are ECDSA P-256 (fast to make, accepted by every client).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

#: Issued certificates start this long before ``now``: a node whose clock runs behind still accepts them.
BACKDATE = timedelta(minutes=5)
CA_VALIDITY = timedelta(days=5 * 365)
CERT_VALIDITY = timedelta(days=365)
PROPAGATION = timedelta(seconds=60)


@dataclass(frozen=True, slots=True)
class Policy:
    ca_validity: timedelta = CA_VALIDITY
    cert_validity: timedelta = CERT_VALIDITY
    #: Renew when less than this share of the validity is left (cert-manager's default is a third).
    renew_fraction: float = 1 / 3
    #: Seconds a newly published CA is given to reach the API server before it signs what is served.
    propagation: timedelta = PROPAGATION


@dataclass(frozen=True, slots=True)
class WebhookPki:
    """What the operator's Secret holds (PEM): the trusted CAs (the signing one first), the signing
    CA's key, and the serving certificate and key."""

    ca_bundle: bytes
    ca_key: bytes
    cert: bytes
    key: bytes

    @property
    def cas(self) -> list[x509.Certificate]:
        return x509.load_pem_x509_certificates(self.ca_bundle)

    @property
    def serving(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.cert)


def plan(current: WebhookPki | None, now: datetime, hosts: Sequence[str], policy: Policy, *,
         published: bool) -> WebhookPki | None:
    """The PKI to store next, or None when ``current`` stays. ``published``: the configuration's
    caBundle already equals ``current.ca_bundle``."""
    if current is None or not _usable(current, now):
        ca_cert, ca_key = _new_ca(now, policy.ca_validity)
        return _with_serving(WebhookPki(_pem(ca_cert), _key_pem(ca_key), b"", b""), now, hosts, policy)
    cas = [ca for ca in current.cas if ca.not_valid_after_utc > now]
    signing = cas[0]
    if _due(signing, now, policy.ca_validity, policy.renew_fraction):
        ca_cert, ca_key = _new_ca(now, policy.ca_validity)
        # The serving certificate stays (its issuer is still in the bundle) until the bundle is out.
        return replace(current, ca_bundle=b"".join(_pem(ca) for ca in [ca_cert, *cas]), ca_key=_key_pem(ca_key))
    trimmed = b"".join(_pem(ca) for ca in cas)
    serving = current.serving
    stale = (_due(serving, now, policy.cert_validity, policy.renew_fraction)
             or sorted(_hosts(serving)) != sorted(hosts) or serving.issuer != signing.subject)
    propagated = published and now - (signing.not_valid_before_utc + BACKDATE) >= policy.propagation
    if stale and (propagated or serving.not_valid_after_utc <= now):
        return _with_serving(replace(current, ca_bundle=trimmed), now, hosts, policy)
    if trimmed != current.ca_bundle:
        return replace(current, ca_bundle=trimmed)
    return None


def _usable(pki: WebhookPki, now: datetime) -> bool:
    """Parses, the signing CA is valid and owns the stored key."""
    try:
        cas = pki.cas
        key = serialization.load_pem_private_key(pki.ca_key, password=None)
        serving = pki.serving
        serialization.load_pem_private_key(pki.key, password=None)
    except ValueError:
        return False
    return bool(cas) and cas[0].not_valid_after_utc > now and _same_key(cas[0], key) and serving is not None


def _same_key(cert: x509.Certificate, key: object) -> bool:
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        return False
    der = serialization.PublicFormat.SubjectPublicKeyInfo
    encoding = serialization.Encoding.DER
    return cert.public_key().public_bytes(encoding, der) == key.public_key().public_bytes(encoding, der)


def _due(cert: x509.Certificate, now: datetime, validity: timedelta, fraction: float) -> bool:
    # The backdating is no part of the lifetime: a 60 s certificate is due after 40 s, not at once.
    lifetime = min(cert.not_valid_after_utc - cert.not_valid_before_utc - BACKDATE, validity)
    return cert.not_valid_after_utc - now < lifetime * fraction


def _hosts(cert: x509.Certificate) -> list[str]:
    try:
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [*names.get_values_for_type(x509.DNSName),
            *(str(ip) for ip in names.get_values_for_type(x509.IPAddress))]


def _new_ca(now: datetime, validity: timedelta) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"dataflow-operator webhook CA {now:%Y%m%dT%H%M%S}")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - BACKDATE).not_valid_after(now + validity)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    return cert, key


def _with_serving(pki: WebhookPki, now: datetime, hosts: Sequence[str], policy: Policy) -> WebhookPki:
    ca = pki.cas[0]
    ca_key = serialization.load_pem_private_key(pki.ca_key, password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)  # written by _new_ca
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    not_after = min(now + policy.cert_validity, ca.not_valid_after_utc)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
            .issuer_name(ca.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - BACKDATE).not_valid_after(not_after)
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    return replace(pki, cert=_pem(cert), key=_key_pem(key))


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())
