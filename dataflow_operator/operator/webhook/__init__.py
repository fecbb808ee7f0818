"""The validating admission webhook: ``kubectl apply`` of an invalid DataFlow is refused with the
field-path messages of ``dataflow-operator validate``.

- :mod:`.review` — AdmissionReview v1 in, AdmissionReview v1 out (pure: bytes → answer).
- :mod:`.server` — the HTTPS listener, bounded in body size and time, serving whatever
  certificate its source holds now (rotation needs no restart).
- :mod:`.pki` — a CA and a serving certificate, and when to renew which (pure, ``cryptography``).
- :mod:`.certificates` — where the certificate comes from: a Secret the operator keeps current and
  whose CA it injects as the ``caBundle`` of the ValidatingWebhookConfiguration, or files that
  cert-manager writes.
"""
