# One image for both roles:
#   dataflow-operator run         the operator (the chart's Deployment)
#   dataflow-operator processor   a pipeline (the Deployments the operator creates per DataFlow)
# Every dependency ships manylinux wheels for CPython 3.11 (confluent-kafka bundles librdkafka,
# psycopg[binary] bundles libpq), so no compiler or system library is installed.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY setup.py setup.cfg README.md ./
COPY dataflow_operator ./dataflow_operator
RUN pip install . && rm -rf /src

# A numeric USER: Kubernetes' runAsNonRoot cannot verify a user name. The chart's
# podSecurityContext runs as the same uid/gid.
RUN groupadd --system --gid 10001 dataflow \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin dataflow
USER 10001:10001
WORKDIR /

# 9090: /metrics (both roles) and the processor's probes; 9091: the operator's /healthz and /readyz.
EXPOSE 9090 9091
ENTRYPOINT ["dataflow-operator"]
CMD ["run"]
