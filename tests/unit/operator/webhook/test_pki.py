"""When the webhook's certificate and CA are renewed, and that what is served is always trusted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cryptography import x509

from dataflow_operator.operator.webhook.pki import Policy, WebhookPki, plan

HOSTS = ["webhook.system.svc", "127.0.0.1"]
POLICY = Policy(ca_validity=timedelta(days=30), cert_validity=timedelta(days=9),
                propagation=timedelta(seconds=60))
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def trusted(pki: WebhookPki, at: datetime) -> bool:
    """The serving certificate verifies against the bundle at ``at``, as the API server checks it."""
    serving = pki.serving
    for ca in pki.cas:
        if ca.subject != serving.issuer:
            continue
        try:
            serving.verify_directly_issued_by(ca)
        except (ValueError, TypeError):
            continue
        if ca.not_valid_before_utc <= at <= ca.not_valid_after_utc and \
                serving.not_valid_before_utc <= at <= serving.not_valid_after_utc:
            return True
    return False


def test_a_first_pki_covers_the_hosts() -> None:
    pki = plan(None, T0, HOSTS, POLICY, published=False)
    assert pki is not None and trusted(pki, T0)
    names = pki.serving.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["webhook.system.svc"]
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert plan(pki, T0 + timedelta(days=1), HOSTS, POLICY, published=True) is None


def test_a_serving_certificate_is_renewed_under_the_same_ca() -> None:
    pki = plan(None, T0, HOSTS, POLICY, published=False)
    assert pki is not None
    due = T0 + timedelta(days=7)  # a third of 9 days left
    renewed = plan(pki, due, HOSTS, POLICY, published=True)
    assert renewed is not None and renewed.ca_bundle == pki.ca_bundle and renewed.cert != pki.cert
    assert trusted(renewed, due)


def test_changed_hosts_or_a_broken_secret_are_reissued() -> None:
    pki = plan(None, T0, HOSTS, POLICY, published=False)
    assert pki is not None
    moved = plan(pki, T0 + timedelta(hours=1), ["other.svc"], POLICY, published=True)
    assert moved is not None and moved.ca_bundle == pki.ca_bundle and moved.cert != pki.cert
    broken = WebhookPki(pki.ca_bundle, b"not a key", pki.cert, pki.key)
    fresh = plan(broken, T0, HOSTS, POLICY, published=True)
    assert fresh is not None and fresh.ca_bundle != pki.ca_bundle and trusted(fresh, T0)


def test_a_ca_rotation_never_serves_an_untrusted_certificate() -> None:
    """Walk 200 days in steps of 3 hours: at every step what is served verifies against what was
    published a propagation delay earlier."""
    pki = plan(None, T0, HOSTS, POLICY, published=False)
    assert pki is not None
    published_bundle, published_at = pki.ca_bundle, T0
    cas_seen = {pki.cas[0].serial_number}
    now = T0
    while now < T0 + timedelta(days=200):
        now += timedelta(hours=3)
        visible = published_bundle if now - published_at >= POLICY.propagation else None
        wanted = plan(pki, now, HOSTS, POLICY, published=pki.ca_bundle == published_bundle)
        if wanted is not None:
            pki = wanted
        if visible is not None:
            assert trusted(WebhookPki(visible, pki.ca_key, pki.cert, pki.key), now), now
        if pki.ca_bundle != published_bundle:
            published_bundle, published_at = pki.ca_bundle, now  # injected in the same round
        cas_seen.update(ca.serial_number for ca in pki.cas)
    assert len(cas_seen) >= 9  # rotated about every 20 days
    assert len(pki.cas) <= 2  # expired CAs leave the bundle


def test_the_new_ca_signs_only_once_published_and_propagated() -> None:
    policy = Policy(ca_validity=timedelta(days=30), cert_validity=timedelta(days=30), propagation=timedelta(seconds=60))
    pki = plan(None, T0, HOSTS, policy, published=False)
    assert pki is not None
    due = T0 + timedelta(days=21)  # CA and certificate have less than a third of 30 days left
    rotated = plan(pki, due, HOSTS, policy, published=True)
    assert rotated is not None and len(rotated.cas) == 2 and rotated.cert == pki.cert
    assert plan(rotated, due + timedelta(seconds=30), HOSTS, policy, published=True) is None
    assert plan(rotated, due + timedelta(hours=1), HOSTS, policy, published=False) is None
    switched = plan(rotated, due + timedelta(seconds=61), HOSTS, policy, published=True)
    assert switched is not None and switched.serving.issuer == rotated.cas[0].subject
    assert switched.ca_bundle == rotated.ca_bundle and trusted(switched, due + timedelta(seconds=61))
